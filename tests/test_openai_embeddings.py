"""Embedding through OpenAI-compatible servers: our own /v1, and the OpenAI simulator."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from openai import OpenAI

from indexes import LocalIndex
from ingest import (
    Folders,
    QuotaExceeded,
    RemoteOptions,
    embedding_input,
    ingest,
    make_embedder,
    open_index,
)
from search import SearchService, Settings
from search.cli.main import cli
from search.http import create_app
from tests.support.openai_sim import create_simulator
from tests.support.openai_sim_state import SimulatorConfig, simulated_embedding

from .conftest import DATA, ServerThread

KEY = "sk-test-key-123"


@pytest.fixture(scope="module")
def semsearch_v1(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`semsearch serve`'s app (no index needed for /v1) on loopback; yields its /v1 URL."""
    app = create_app(Settings(index_dir=tmp_path_factory.mktemp("none") / "ix", cache_dir=model_cache))
    with ServerThread(app) as server:
        yield f"{server.url}/v1"


def simulator(**config: object) -> ServerThread:
    return ServerThread(create_simulator(SimulatorConfig(api_key=KEY, **config)))  # type: ignore[arg-type]


def fast(url: str, **options: object) -> RemoteOptions:
    """Client options for tests: quick backoff and timeouts."""
    return RemoteOptions(
        **{"base_url": url, "api_key": KEY, "backoff": 0.01, "max_retries": 8, "timeout": 5.0, **options}
    )  # type: ignore[arg-type]


def ingest_folder(index_dir: Path, model: str, remote: RemoteOptions, cache: Path, folder: Path = DATA / "sample"):  # type: ignore[no-untyped-def]
    embedder = make_embedder(model, cache_dir=cache, remote=remote)
    index, chunking = open_index(index_dir, embedder, None)
    assert index is not None
    try:
        return ingest(index, embedder, Folders([folder]), chunking=chunking, batch_size=16)
    finally:
        index.close()
        embedder.close()


def stored_vectors_match_the_simulator(index_dir: Path, dimensions: int) -> int:
    """Every chunk is stored once, with the simulator's vector for its exact embedding input."""
    index = LocalIndex.open(index_dir)
    with index.read() as reader:
        rows = list(reader.all_chunks())
        vectors = dict(zip([r.chunk_id for r in rows], reader.vectors([r.chunk_id for r in rows])))
    keys = [(r.path, r.chunk.ordinal) for r in rows]
    assert len(keys) == len(set(keys))
    for row in rows:
        expected = simulated_embedding(embedding_input(row.title, row.heading, row.text), dimensions)
        assert np.allclose(vectors[row.chunk_id], expected, atol=1e-6)
    return len(rows)


# -- our own /v1/embeddings ----------------------------------------------------


def test_official_openai_client_gets_the_in_process_vectors(semsearch_v1: str, embedder) -> None:  # type: ignore[no-untyped-def]
    client = OpenAI(base_url=semsearch_v1, api_key="anything")
    texts = ["How do plants make sugar?", "TCP slow start doubles the window every round trip."]
    expected = embedder.embed_documents(texts)
    default = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # the client asks for base64
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    for reply in (default, floats):
        got = np.array([d.embedding for d in sorted(reply.data, key=lambda d: d.index)])
        assert np.allclose(got, expected, atol=1e-5)
        assert reply.usage.prompt_tokens == reply.usage.total_tokens > 0
    assert [m.id for m in client.models.list()] == ["all-MiniLM-L6-v2"]


def test_our_v1_rejects_what_it_cannot_do_in_openai_shape(semsearch_v1: str) -> None:
    client = OpenAI(base_url=semsearch_v1, api_key="anything", max_retries=0)
    import openai

    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.BadRequestError, match="empty"):
        client.embeddings.create(model="all-MiniLM-L6-v2", input=["ok", ""])
    with pytest.raises(openai.BadRequestError, match="384"):
        client.embeddings.create(model="all-MiniLM-L6-v2", input="x", dimensions=12)


def test_ingest_through_our_own_v1_gives_the_in_process_results(
    semsearch_v1: str, model_cache: Path, tmp_path: Path
) -> None:
    ingest_folder(tmp_path / "remote", "openai/all-MiniLM-L6-v2", fast(semsearch_v1), model_cache)
    ingest_folder(tmp_path / "local", "local/all-MiniLM-L6-v2", RemoteOptions(), model_cache)
    remote = SearchService.open(tmp_path / "remote", cache_dir=model_cache, remote=RemoteOptions(api_key="x"))
    local = SearchService.open(tmp_path / "local", cache_dir=model_cache)
    for query in ("who invented the printing press", "congestion window after loss", "how do aqueducts carry water"):
        for mode in ("dense", "hybrid"):
            got = [(Path(h.path).name, h.text, round(h.score, 4)) for h in remote.search(query, 5, mode)]
            want = [(Path(h.path).name, h.text, round(h.score, 4)) for h in local.search(query, 5, mode)]
            assert got == want
    remote.close()
    local.close()


# -- the client against the OpenAI simulator -----------------------------------


def test_faults_are_retried_and_every_chunk_is_embedded_exactly_once(model_cache: Path, tmp_path: Path) -> None:
    faults = ("500", "429", "drop", "malformed", "wrong_count", "wrong_dimension", "shuffled", "503", "502")
    with simulator(faults=faults, retry_after=0.05) as sim:
        summary = ingest_folder(
            tmp_path / "ix", "openai/text-embedding-3-small", fast(f"{sim.url}/v1", dimensions=32), model_cache
        )
        state = sim.app.state.sim
    assert summary.ingested == 10 and summary.skipped == []
    assert summary.upstream["retries"] >= 7 and summary.upstream["rate_limited"] >= 1
    assert stored_vectors_match_the_simulator(tmp_path / "ix", 32) == summary.chunks
    assert sum(state.faults_injected.values()) == len(faults)
    manifest = json.loads((tmp_path / "ix" / "config.json").read_text())
    assert manifest["embedder"]["dimensions"] == 32 and manifest["embedder"]["base_url"] == f"{sim.url}/v1"
    assert KEY not in (tmp_path / "ix" / "config.json").read_text()


def test_a_slow_reply_times_out_and_is_retried(model_cache: Path, tmp_path: Path) -> None:
    with simulator(faults=("slow",), slow_seconds=6.0) as sim:
        began = time.monotonic()
        summary = ingest_folder(
            tmp_path / "ix",
            "openai/text-embedding-3-small",
            fast(f"{sim.url}/v1", timeout=1.5, dimensions=16),
            model_cache,
        )
    assert summary.upstream["retries"] >= 1 and time.monotonic() - began < 6.0, "the client gave up on the slow reply"
    stored_vectors_match_the_simulator(tmp_path / "ix", 16)


def test_retry_after_is_honoured(model_cache: Path, tmp_path: Path) -> None:
    with simulator(faults=("429", "429"), retry_after=0.4) as sim:
        began = time.monotonic()
        remote = fast(f"{sim.url}/v1", concurrency=1, dimensions=16)
        summary = ingest_folder(
            tmp_path / "ix", "openai/text-embedding-3-small", remote, model_cache, DATA / "sample" / "chess-rules.html"
        )
    assert summary.upstream["rate_limited"] == 2
    assert time.monotonic() - began >= 0.8


def test_servers_without_base64_get_floats(model_cache: Path, tmp_path: Path) -> None:
    with simulator(supports_base64=False) as sim:
        ingest_folder(
            tmp_path / "ix", "openai/text-embedding-3-small", fast(f"{sim.url}/v1", dimensions=24), model_cache
        )
        formats = [entry.get("encoding_format") for entry in sim.app.state.sim.requests_log]
    assert "float" in formats
    stored_vectors_match_the_simulator(tmp_path / "ix", 24)


def test_unknown_models_learn_their_size_from_the_server(model_cache: Path, tmp_path: Path) -> None:
    with simulator(dimensions=48) as sim:
        embedder = make_embedder("openai/nomic-embed-text", cache_dir=model_cache, remote=fast(f"{sim.url}/v1"))
        assert (embedder.dimension, embedder.max_tokens) == (48, 512)
        assert embedder.embed_documents(["a", "", "b"]).shape == (3, 48)
        embedder.close()
        inputs = [e["n_inputs"] for e in sim.app.state.sim.requests_log]
    assert inputs[-1] == 2, "empty strings are never sent"


def test_quota_errors_stop_at_once_and_keep_what_was_embedded(model_cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "sample", folder)
    faults = ("ok", "quota")
    with simulator(faults=faults) as sim:
        remote = fast(f"{sim.url}/v1", concurrency=1, dimensions=16)
        with pytest.raises(QuotaExceeded, match="quota"):
            ingest_folder(tmp_path / "ix", "openai/text-embedding-3-small", remote, model_cache, folder)
        state = sim.app.state.sim
        assert state.faults_injected["quota"] == 1 and state.requests == 2, "no retry after insufficient_quota"
        assert LocalIndex.open(tmp_path / "ix").stats().counts.documents == 0, "nothing half-published"
        resumed = ingest_folder(tmp_path / "ix", "openai/text-embedding-3-small", remote, model_cache, folder)
    assert resumed.ingested == 10
    assert 0 < resumed.embedded < resumed.chunks, "what the first run embedded was kept"
    assert stored_vectors_match_the_simulator(tmp_path / "ix", 16) == resumed.chunks


def test_a_bad_key_fails_with_a_clear_message_from_the_cli(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator() as sim:
        monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{sim.url}/v1")
        args = [
            "ingest",
            str(DATA / "sample"),
            "--index",
            str(tmp_path / "ix"),
            "--embedding-model",
            "openai/text-embedding-3-small",
        ]
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "HTTP 401" in result.output and "OPENAI_API_KEY" in result.output
    assert "sk-wrong" not in result.output


def test_dry_run_prices_without_calling_the_server(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    args = [
        "ingest",
        str(DATA / "sample"),
        "--index",
        str(tmp_path / "ix"),
        "--embedding-model",
        "openai/text-embedding-3-large",
        "--dry-run",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dry_run"] and data["chunks"] > 0 and data["embedded_tokens"] > data["tokens"] > 0
    assert data["cost_usd"]["estimated"]["standard"] == pytest.approx(data["embedded_tokens"] * 0.13 / 1e6, rel=1e-3)
    assert data["cost_usd"]["estimated"]["batch"] == pytest.approx(
        data["cost_usd"]["estimated"]["standard"] / 2, rel=1e-3
    )
    assert not (tmp_path / "ix").exists()


def test_search_reuses_the_recorded_embedder_with_the_key_from_the_environment(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulator() as sim:
        ingest_folder(
            tmp_path / "ix", "openai/text-embedding-3-small", fast(f"{sim.url}/v1", dimensions=64), model_cache
        )
        monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        result = CliRunner().invoke(
            cli, ["search", "printing press Gutenberg", "--index", str(tmp_path / "ix"), "--mode", "dense", "--json"]
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["results"][0]["path"].endswith("printing-press.html")


def test_pacing_keeps_under_the_limits_without_429s(model_cache: Path) -> None:
    """A 1-second window stands in for OpenAI's minute; the limiter is told the same period."""
    texts = [f"note {i} about pacing requests under limits" for i in range(16 * 12)]
    with simulator(rpm=4, tpm=400, window=1.0, latency=0.01) as sim:
        remote = fast(f"{sim.url}/v1", dimensions=16, rpm=4, tpm=400, rate_period=1.0, concurrency=4)
        embedder = make_embedder("openai/text-embedding-3-small", cache_dir=model_cache, remote=remote)
        began = time.monotonic()
        vectors = [embedder.embed_documents(texts[i : i + 16]) for i in range(0, len(texts), 16)]
        elapsed = time.monotonic() - began
        usage = embedder.usage()
        embedder.close()
        state = sim.app.state.sim
    assert usage["rate_limited"] == 0 and state.rejected_429 == 0
    assert elapsed >= 2.0, "twelve requests under 4 per second and 400 tokens per second had to be paced"
    expected = np.array([simulated_embedding(t, 16) for t in texts])
    assert np.allclose(np.vstack(vectors), expected, atol=1e-6)


def test_an_index_follows_its_embedding_server_when_it_moves(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest records the model and the address; the flag and OPENAI_BASE_URL override the address."""
    with simulator() as old:
        ingest_folder(
            tmp_path / "ix", "openai/text-embedding-3-small", fast(f"{old.url}/v1", dimensions=64), model_cache
        )
    dead = f"{old.url}/v1"  # the server is gone: nothing listens on its port any more
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    index = ["--index", str(tmp_path / "ix")]
    search = ["search", "printing press Gutenberg", *index, "--mode", "dense", "--json"]
    began = time.monotonic()
    result = CliRunner().invoke(cli, search)
    assert result.exit_code == 1 and dead in result.output
    assert "--base-url" in result.output and "OPENAI_BASE_URL" in result.output
    assert time.monotonic() - began < 20, "a refused connection is retried briefly (it took ~50 s)"
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "kiln.txt").write_text("A kiln fires clay into pottery at high heat.\n")
    with simulator() as moved:
        new = f"{moved.url}/v1"
        flagged = CliRunner().invoke(cli, [*search, "--base-url", new])
        assert flagged.exit_code == 0, flagged.output
        assert json.loads(flagged.output)["results"][0]["path"].endswith("printing-press.html")
        monkeypatch.setenv("OPENAI_BASE_URL", new)
        asked = CliRunner().invoke(cli, ["ask", "who invented the printing press?", *index, "--json"])
        assert asked.exit_code == 0 and not json.loads(asked.output)["abstained"], asked.output
        ingested = CliRunner().invoke(cli, ["ingest", str(tmp_path / "more"), *index, "--json"])
        assert ingested.exit_code == 0 and json.loads(ingested.output)["embedded"] >= 1, ingested.output
        assert moved.app.state.sim.requests_log, "the queries and the new passage went to the moved server"
        with ServerThread(create_app(Settings.from_env().with_index(tmp_path / "ix"))) as server:
            assert httpx.post(f"{server.url}/search", json={"query": "kiln pottery"}).status_code == 200
    monkeypatch.setenv("OPENAI_BASE_URL", dead)
    with ServerThread(create_app(Settings.from_env().with_index(tmp_path / "ix"))) as server:
        response = httpx.post(f"{server.url}/search", json={"query": "kiln pottery"}, timeout=60)
    assert response.status_code == 503 and dead in response.text and "OPENAI_BASE_URL" in response.text
