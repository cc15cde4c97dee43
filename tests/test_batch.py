"""`semsearch ingest --batch` through the Batch API of the OpenAI simulator on loopback, and the simulator's
Files and Batch APIs driven by the official `openai` SDK."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from fastapi import FastAPI

from indexes import LocalIndex
from tests.support.openai_sim import create_simulator, reconfigure
from tests.support.openai_sim_state import SimulatorConfig, SimulatorState

from .conftest import ServerThread

KEY = "sk-batch-test"
MODEL = "openai/text-embedding-3-small"
FAST = ("--batch-poll-interval", "0.01")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_simulator()


@pytest.fixture(scope="module")
def server(app: FastAPI) -> Iterator[ServerThread]:
    with ServerThread(app) as running:
        yield running


def configure(app: FastAPI, **fields: Any) -> SimulatorState:
    """A fresh simulator state (files, batches, logs) with these config fields on the shared server."""
    return reconfigure(app, api_key=KEY, **fields)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """12 notes cut into ~30 passages each at 32 tokens: several request lines of 128 inputs."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(12):
        sentences = (f"Note {n} sentence {i} tells of river {i * n % 17} and valley {i + n}." for i in range(60))
        (folder / f"note-{n:02}.txt").write_text(" ".join(sentences))
    return folder


@pytest.fixture
def cli(run, server: ServerThread, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`cli(folder, index, *flags)`: `semsearch ingest` with the remote model on the simulator."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def ingest(folder: Path, index: Path, *flags: str):  # type: ignore[no-untyped-def]
        base = ("--embedding-model", MODEL, "--base-url", f"{server.url}/v1", "--chunk-tokens", "32")
        return run("ingest", str(folder), "--index", str(index), *base, *flags)

    return ingest


def passages(index_dir: Path) -> dict[tuple[str, int], tuple[str, np.ndarray]]:
    """Every passage of an index by (path, ordinal): its text and its stored vector."""
    index = LocalIndex.open(index_dir)
    try:
        with index.read() as reader:
            chunks = list(reader.all_chunks())
            vectors = reader.vectors([c.chunk_id for c in chunks])
    finally:
        index.close()
    return {(c.path, c.chunk.ordinal): (c.text, v) for c, v in zip(chunks, vectors)}


def assert_same_index(batched: Path, synchronous: Path) -> None:
    left, right = passages(batched), passages(synchronous)
    assert left.keys() == right.keys() and len(left) > 256
    for key, (text, vector) in left.items():
        assert text == right[key][0]
        np.testing.assert_allclose(vector, right[key][1], atol=1e-6)


def embeddings_calls(sim: SimulatorState) -> int:
    return sum(1 for entry in sim.requests_log if entry["path"] == "/v1/embeddings")


def json_of(output: str) -> dict[str, Any]:
    """The JSON summary line among the progress lines written to stderr."""
    line = next(line for line in output.splitlines() if line.startswith("{"))
    return json.loads(line)  # type: ignore[no-any-return]


def test_a_batch_ingest_gives_the_index_a_synchronous_one_gives_without_calling_embeddings(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    sim = configure(app, batch_polls=2)
    batched = cli(corpus, tmp_path / "batched", "--batch", *FAST, "--json")
    assert batched.exit_code == 0, batched.output
    assert sim.batches_created == 1 and embeddings_calls(sim) == 0, "every passage went through the batch"
    summary = json_of(batched.stdout)
    assert summary["embedded"] == 0 and summary["batch"]["from_batch"] == summary["chunks"] > 256
    assert summary["batch"]["submitted_requests"] >= 3, "several request lines of 128 inputs"
    cost = summary["batch"]["cost_usd"]
    assert cost["fallback"] == 0 and cost["batch"] > 0 and cost["synchronous"] == pytest.approx(2 * cost["batch"])
    assert sim.files == {}, "the input, output and error files are deleted once collected"
    assert "Batches: 1 running" in batched.stderr, "progress goes to stderr"

    sync_sim = configure(app)
    synchronous = cli(corpus, tmp_path / "sync")
    assert synchronous.exit_code == 0 and sync_sim.batches_created == 0 and embeddings_calls(sync_sim) > 0
    assert sync_sim.inputs_embedded.keys() == sim.inputs_batched.keys(), "the same inputs, sent either way"
    assert_same_index(tmp_path / "batched", tmp_path / "sync")
    assert _ledger_rows(tmp_path / "batched") == (0, 0, 0), "recorded batches and their vectors are cleared"


def test_the_summary_prints_both_prices_and_a_second_run_submits_nothing(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    sim = configure(app)
    first = cli(corpus, tmp_path / "ix", "--batch", *FAST)
    assert first.exit_code == 0, first.output
    assert "Batch API: 1 submitted, 0 resumed, 1 collected (1 completed)" in first.stdout
    assert "embedded through batches, 0 synchronously (fallback)" in first.stdout
    cost_line = next(line for line in first.stdout.splitlines() if line.startswith("Cost: $"))
    assert "through the batch API" in cost_line and "all synchronous: $" in cost_line
    again = cli(corpus, tmp_path / "ix", "--batch", *FAST)
    assert again.exit_code == 0 and sim.batches_created == 1 and "Batch API: 0 submitted" in again.stdout


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_a_failed_or_expired_batch_falls_back_to_synchronous_embedding_for_what_is_missing(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path, outcome: str
) -> None:
    sim = configure(app, batch_outcomes=(outcome,))
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json_of(result.stdout)
    batch = summary["batch"]
    assert batch["statuses"] == {outcome: 1}
    assert summary["batch"]["from_batch"] + summary["embedded"] == summary["chunks"]
    if outcome == "failed":
        assert batch["delivered"] == 0 and summary["embedded"] == summary["chunks"]
        assert "token_limit_exceeded" in result.stderr
    else:
        assert 0 < batch["delivered"] < summary["chunks"] and batch["failed_lines"] > 0
        assert "batch_expired" in result.stderr
    assert not set(sim.inputs_embedded) & set(sim.inputs_batched), "nothing delivered is embedded again"
    assert sum(sim.inputs_embedded.values()) == summary["embedded"]
    configure(app)
    assert cli(corpus, tmp_path / "sync").exit_code == 0
    assert_same_index(tmp_path / "ix", tmp_path / "sync")


def test_failed_and_garbled_request_lines_fall_back_for_their_passages_only(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    configure(app, batch_failed_lines=(1,), batch_garbled_lines=(0,))
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json_of(result.stdout)
    assert summary["batch"]["statuses"] == {"completed": 1} and summary["batch"]["failed_lines"] == 2
    assert summary["embedded"] == 2 * 128, "the two bad lines' inputs, and nothing else, go synchronously"
    assert summary["batch"]["from_batch"] == summary["chunks"] - 256
    assert 0 < summary["batch"]["cost_usd"]["fallback"] < summary["batch"]["cost_usd"]["batch"] * 2
    configure(app)
    assert cli(corpus, tmp_path / "sync").exit_code == 0
    assert_same_index(tmp_path / "ix", tmp_path / "sync")


def test_no_batch_wait_submits_and_exits_and_the_next_run_resumes_without_paying_again(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    sim = configure(app, batch_polls=3)
    first = cli(corpus, tmp_path / "ix", "--batch", "--no-batch-wait")
    assert first.exit_code == 0, first.output
    assert "1 batches still running: run the same command again" in first.stdout
    assert sim.batches_created == 1 and embeddings_calls(sim) == 0
    assert LocalIndex.open(tmp_path / "ix").stats().counts.documents == 0, "nothing is published yet"
    assert _ledger_rows(tmp_path / "ix")[0] == 1, "the batch is recorded in the index"
    second = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert second.exit_code == 0, second.output
    summary = json_of(second.stdout)
    assert sim.batches_created == 1, "the recorded batch is resumed, not submitted again"
    assert summary["batch"]["resumed"] == 1 and summary["batch"]["submitted"] == 0
    assert summary["embedded"] == 0 and summary["batch"]["from_batch"] == summary["chunks"]
    assert LocalIndex.open(tmp_path / "ix").stats().counts.chunks == summary["chunks"]


def test_killed_while_polling_the_next_run_resumes_the_recorded_batch(
    app: FastAPI, server: ServerThread, corpus: Path, tmp_path: Path, model_cache: Path
) -> None:
    sim = configure(app, batch_polls=1_000_000)  # never ends until the test lets it
    index_dir = tmp_path / "ix"
    command = [
        *("ingest", str(corpus), "--index", str(index_dir), "--chunk-tokens", "32", "--batch", *FAST),
        *("--embedding-model", MODEL, "--base-url", f"{server.url}/v1"),
    ]
    env = {**os.environ, "OPENAI_API_KEY": KEY, "SEMSEARCH_CACHE_DIR": str(model_cache)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from search.cli.main import main; main()", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(b.polls >= 3 for b in sim.batches.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the run is still polling"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert sim.batches_created == 1 and _ledger_rows(index_dir)[0] == 1
    sim.config = SimulatorConfig(api_key=KEY, batch_polls=1)  # the batch now moves on
    env_run = subprocess.run(
        [sys.executable, "-c", "from search.cli.main import main; main()", *command, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert env_run.returncode == 0, env_run.stderr
    summary = json_of(env_run.stdout)
    assert sim.batches_created == 1 and summary["batch"]["resumed"] == 1
    assert summary["embedded"] == 0 and summary["batch"]["from_batch"] == summary["chunks"]
    assert _ledger_rows(index_dir) == (0, 0, 0)


def test_a_timeout_cancels_the_batch_and_embeds_what_it_left_synchronously(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    sim = configure(app)  # in progress after the first poll, when the timeout cancels it: half its lines are done
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--batch-timeout", "0", "--json")
    assert result.exit_code == 0, result.output
    summary = json_of(result.stdout)
    assert summary["batch"]["statuses"] == {"cancelled": 1} and "cancelling 1 batches" in result.stderr
    assert 0 < summary["embedded"] < summary["chunks"]
    assert summary["batch"]["from_batch"] + summary["embedded"] == summary["chunks"]
    assert [b.status for b in sim.batches.values()] == ["cancelled"]


def test_dry_run_batch_prints_the_estimate_and_submits_nothing(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    sim = configure(app)
    result = cli(corpus, tmp_path / "ix", "--batch", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Batch API: would submit 1 batches (" in result.stdout
    estimate = next(line for line in result.stdout.splitlines() if line.startswith("Cost (estimated)"))
    batch, standard = (float(part.split("$")[1].split()[0]) for part in estimate.split(", "))
    assert batch > 0 and standard == pytest.approx(2 * batch)
    assert sim.batches_created == 0 and sim.files == {} and not (tmp_path / "ix").exists()


def test_the_local_model_refuses_batch(run: Callable[..., Any], corpus: Path, tmp_path: Path) -> None:
    result = run("ingest", str(corpus), "--index", str(tmp_path / "ix"), "--batch")
    assert result.exit_code == 2
    assert "the local model needs no batch" in result.output
    assert not (tmp_path / "ix").exists(), "refused before any index folder is made"


def test_the_openai_sdk_speaks_to_the_simulated_files_and_batch_apis(app: FastAPI, server: ServerThread) -> None:
    sim = configure(app, batch_polls=1, batch_failed_lines=(2,))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    texts = [[f"river {i} and valley", f"mountain {i}"] for i in range(3)]
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": t},
        }
        for i, t in enumerate(texts)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(data)
    assert client.files.retrieve(uploaded.id).filename == "requests.jsonl"
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h")
    assert batch.status == "validating" and batch.input_file_id == uploaded.id
    seen: list[str] = [batch.status]
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        batch = client.batches.retrieve(batch.id)
        seen.append(batch.status)
    assert seen == ["validating", "in_progress", "finalizing", "completed"]
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (3, 2, 1)
    assert batch.output_file_id and batch.error_file_id
    output = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    errors = [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert [line["custom_id"] for line in output] == ["r0", "r1"] and [e["custom_id"] for e in errors] == ["r2"]
    synchronous = client.embeddings.create(model="text-embedding-3-small", input=texts[0])
    body = output[0]["response"]["body"]
    assert [d["embedding"] for d in body["data"]] == [d.embedding for d in synchronous.data]
    assert [b.id for b in client.batches.list()] == [batch.id]
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    with pytest.raises(openai.BadRequestError):  # an output file is not a batch input
        client.batches.create(input_file_id=batch.output_file_id, endpoint="/v1/embeddings", completion_window="24h")
    again = client.files.create(file=("again.jsonl", io.BytesIO(data)), purpose="batch")
    running = client.batches.create(input_file_id=again.id, endpoint="/v1/embeddings", completion_window="24h")
    assert client.batches.cancel(running.id).status == "cancelling"
    assert client.batches.retrieve(running.id).status == "cancelled"
    assert sim.batches_created == 2
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0).batches.list()


def _ledger_rows(index_dir: Path) -> tuple[int, int, int]:
    """Recorded batches, their inputs, and batch vectors waiting in the catalog."""
    with sqlite3.connect(index_dir / "chunks.sqlite") as conn:
        tables = ("embedding_batches", "embedding_batch_inputs", "batch_vectors")
        counts = [conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables]
    return counts[0], counts[1], counts[2]


def test_a_server_without_a_batch_api_is_a_clear_error_and_records_nothing(
    run: Callable[..., Any], corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ServerThread(FastAPI()) as bare:  # answers 404 to every route
        result = run(
            *("ingest", str(corpus), "--index", str(tmp_path / "ix"), "--batch"),
            *("--embedding-model", MODEL, "--base-url", f"{bare.url}/v1"),
        )
    assert result.exit_code == 1
    assert "has no Batch API (POST /files answered HTTP 404); ingest without --batch" in result.output
    assert _ledger_rows(tmp_path / "ix") == (0, 0, 0)


@pytest.mark.parametrize("server_has_it", [True, False])
def test_a_run_killed_between_recording_and_creating_a_batch_is_resumed_without_paying_twice(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path, server_has_it: bool
) -> None:
    """kill -9 after the input file was recorded, before the batch id was: the batch is found by its input file
    on the server (or created then, if the request never got there)."""
    sim = configure(app)
    assert cli(corpus, tmp_path / "ix", "--batch", "--no-batch-wait").exit_code == 0
    with sqlite3.connect(tmp_path / "ix" / "chunks.sqlite") as conn:  # the state such a kill leaves
        conn.execute("UPDATE embedding_batches SET batch_id = NULL, status = 'uploaded'")
    if not server_has_it:
        sim.batches.clear()
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json_of(result.stdout)
    assert summary["batch"]["resumed"] == 1 and summary["batch"]["submitted"] == 0
    assert sim.batches_created == (1 if server_has_it else 2) and len(sim.batches) == 1
    assert summary["embedded"] == 0 and summary["batch"]["from_batch"] == summary["chunks"]


def test_a_changed_file_sends_only_its_new_passages_to_a_batch(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    sim = configure(app)
    assert cli(corpus, tmp_path / "ix", "--batch", *FAST).exit_code == 0
    batched = set(sim.inputs_batched)
    target = corpus / "note-03.txt"
    target.write_text(target.read_text() + " A closing sentence about the estuary, added later.")
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    summary = json_of(result.stdout)
    assert sim.batches_created == 2 and summary["ingested"] == 1
    new = set(sim.inputs_batched) - batched
    assert 0 < len(new) == summary["batch"]["submitted_inputs"] == summary["batch"]["from_batch"] < 10
    assert all("Note 3 " in text or "estuary" in text for text in new), "only the changed file's new passages"


def test_batches_that_do_not_stop_after_the_timeout_are_left_recorded_and_the_run_finishes_synchronously(
    app: FastAPI, server: ServerThread, corpus: Path, tmp_path: Path, model_cache: Path
) -> None:
    from ingest import Folders, RemoteOptions, make_embedder, open_index
    from ingest.batch import BatchOptions, ingest_in_batches
    from ingest.batch_api import BatchClient

    sim = configure(app, batch_polls=1_000_000)  # validating for ever, then cancelling for ever
    remote = RemoteOptions(base_url=f"{server.url}/v1", api_key=KEY)
    embedder = make_embedder(MODEL, cache_dir=model_cache, remote=remote)
    api = BatchClient.connect(f"{server.url}/v1", KEY, timeout=10, max_retries=2, backoff=0.01)
    index, chunking = open_index(tmp_path / "ix", embedder, None)
    options = BatchOptions(poll_interval=0.01, timeout=0, cancel_grace=0.05)
    said: list[str] = []
    try:
        summary = ingest_in_batches(index, embedder, Folders([corpus]), api, options, say=said.append)  # type: ignore[arg-type]
    finally:
        index.close()
        api.close()
        embedder.close()
    assert summary.batch["abandoned"] == 1 and summary.batch["pending"] == 0
    assert summary.embedded == summary.chunks > 0 and summary.from_batch == 0
    assert [b.status for b in sim.batches.values()] == ["cancelling"]
    assert any("have not stopped yet" in line for line in said)
    assert _ledger_rows(tmp_path / "ix")[0] == 1, "still recorded: a later run collects it"


def test_429s_5xx_and_a_lost_reply_to_creating_the_batch_neither_stop_the_run_nor_pay_twice(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    """The upload gets a 429 then a 500 (retried); the batch is created but its reply is lost: the run finds it."""
    sim = configure(app, faults=("429", "500", "ok", "drop"))
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json_of(result.stdout)
    assert sim.faults_injected == {"429": 1, "500": 1, "drop": 1}
    assert sim.batches_created == 1, "the batch whose reply was lost is found, not created again"
    assert summary["embedded"] == 0 and summary["batch"]["from_batch"] == summary["chunks"]
    assert len([e for e in sim.requests_log if e["path"] == "/v1/files"]) == 3


def test_an_output_file_cut_off_while_downloading_is_downloaded_again(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    """The output file is streamed to disk: a body that breaks off is fetched again from its start."""
    sim = configure(app)
    assert cli(corpus, tmp_path / "whole", "--batch", *FAST).exit_code == 0
    content_at = next(i for i, e in enumerate(sim.requests_log) if e["path"].endswith("/content"))
    sim = configure(app, faults=("ok",) * content_at + ("drop",))  # the same run, its download cut off
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert result.exit_code == 0, result.output
    assert sim.faults_injected == {"drop": 1}
    assert len([e for e in sim.requests_log if e["path"].endswith("/content")]) == 2
    summary = json_of(result.stdout)
    assert summary["embedded"] == 0 and summary["batch"]["from_batch"] == summary["chunks"]
    assert_same_index(tmp_path / "ix", tmp_path / "whole")


def test_an_output_file_is_read_a_line_at_a_time_and_its_vectors_handed_on_a_part_at_a_time(
    tmp_path: Path, model_cache: Path
) -> None:
    from ingest import RemoteOptions, make_embedder
    from ingest.batch_files import Delivered, read_output
    from ingest.run import hash_text
    from tests.support.openai_sim import embedding_reply
    from tests.support.openai_sim_state import simulated_embedding

    config = SimulatorConfig()
    bodies = [
        {"model": "text-embedding-3-small", "input": [f"passage {i} of line {n}" for i in range(128)]} for n in range(3)
    ]
    output = tmp_path / "output.jsonl"
    with output.open("w") as out:
        for n, body in enumerate(bodies):
            response = {"status_code": 200, "body": embedding_reply({**body, "encoding_format": "base64"}, config)}
            out.write(json.dumps({"custom_id": f"c{n}", "response": response, "error": None}) + "\n")
    requests = {f"c{n}": [hash_text(t) for t in body["input"]] for n, body in enumerate(bodies)}
    remote = RemoteOptions(base_url="http://127.0.0.1:9/v1", api_key=KEY)
    embedder = make_embedder(MODEL, cache_dir=model_cache, remote=remote)
    parts: list[dict[str, bytes]] = []
    got = Delivered()
    try:
        with output.open("rb") as lines:
            read_output(lines, requests, embedder.parse_vectors, got, parts.append, part=200)  # type: ignore[attr-defined]
    finally:
        embedder.close()
    assert [len(part) for part in parts] == [256, 128], "a part once it holds 200 vectors, and the rest"
    assert got.vectors == 384 and got.failed_lines == 0 and got.tokens > 0
    kept = {h: v for part in parts for h, v in part.items()}
    for body in bodies:
        for text in body["input"]:
            expected = simulated_embedding(text, 1536)
            np.testing.assert_allclose(np.frombuffer(kept[hash_text(text)], dtype="<f4"), expected, atol=1e-6)


def test_a_finished_batch_whose_output_file_is_gone_is_forgotten_and_its_passages_embedded_synchronously(
    app: FastAPI, server: ServerThread, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    """Collected long after `--no-batch-wait`: the batch completed, but its output file expired (a 404)."""
    sim = configure(app)
    assert cli(corpus, tmp_path / "ix", "--batch", "--no-batch-wait").exit_code == 0
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)
    (batch,) = sim.batches.values()
    states = [client.batches.retrieve(batch.id) for _ in range(3)]  # validating -> ... -> completed
    done = states[-1]
    assert done.status == "completed"
    assert done.output_file_id and client.files.delete(done.output_file_id).deleted
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert result.exit_code == 0, result.output
    summary = json_of(result.stdout)
    (lost,) = summary["batch"]["lost"]
    assert lost.startswith(f"{batch.id}: its files could not be downloaded") and "HTTP 404" in lost
    assert summary["embedded"] == summary["chunks"] > 0 and summary["batch"]["from_batch"] == 0
    assert _ledger_rows(tmp_path / "ix") == (0, 0, 0) and sim.files == {}, "forgotten here and on the server"
    assert cli(corpus, tmp_path / "ix", "--batch", *FAST).exit_code == 0, "the next run has nothing left to do"
    configure(app)
    assert cli(corpus, tmp_path / "sync").exit_code == 0
    assert_same_index(tmp_path / "ix", tmp_path / "sync")


def test_a_recorded_batch_whose_create_is_refused_for_good_is_forgotten_and_the_next_run_completes(
    app: FastAPI, cli: Callable[..., Any], corpus: Path, tmp_path: Path
) -> None:
    """kill -9 before the batch was created, and the next run comes after its input file expired (a 400)."""
    sim = configure(app)
    assert cli(corpus, tmp_path / "ix", "--batch", "--no-batch-wait").exit_code == 0
    with sqlite3.connect(tmp_path / "ix" / "chunks.sqlite") as conn:  # the state such a kill leaves
        conn.execute("UPDATE embedding_batches SET batch_id = NULL, status = 'uploaded'")
    sim.batches.clear()  # the create never got there
    (input_file,) = sim.files.values()
    input_file.expires_at = int(time.time()) - 1
    result = cli(corpus, tmp_path / "ix", "--batch", *FAST)
    assert result.exit_code == 0, result.output
    assert (
        f"Batch not collected, its passages are embedded synchronously instead: over {input_file.id}:" in result.stdout
    )
    assert "HTTP 400: File" in result.stdout and "has expired" in result.stdout
    assert "Passages: 0 embedded through batches, " in result.stdout and " 0 synchronously" not in result.stdout
    assert sim.batches == {} and sim.files == {}, "nothing created; the input file deleted"
    assert _ledger_rows(tmp_path / "ix") == (0, 0, 0)
    again = cli(corpus, tmp_path / "ix", "--batch", *FAST, "--json")
    assert again.exit_code == 0 and json_of(again.stdout)["batch"]["submitted"] == 0
    configure(app)
    assert cli(corpus, tmp_path / "sync").exit_code == 0
    assert_same_index(tmp_path / "ix", tmp_path / "sync")


def test_a_plain_ingest_that_publishes_delivered_batch_vectors_drops_them_from_the_waiting_room(
    app: FastAPI, server: ServerThread, cli: Callable[..., Any], corpus: Path, tmp_path: Path, model_cache: Path
) -> None:
    """A `--batch` run killed after collecting its batch leaves the vectors waiting; an ingest without --batch
    publishes them, and drops them from `batch_vectors` as it finishes."""
    from indexes import BatchLedger
    from ingest import RemoteOptions, make_embedder
    from ingest.batch import BatchOptions, BatchRun
    from ingest.batch_api import BatchClient

    sim = configure(app)
    assert cli(corpus, tmp_path / "ix", "--batch", "--no-batch-wait").exit_code == 0
    embedder = make_embedder(
        MODEL, cache_dir=model_cache, remote=RemoteOptions(base_url=f"{server.url}/v1", api_key=KEY)
    )
    api = BatchClient.connect(f"{server.url}/v1", KEY, timeout=10, max_retries=2, backoff=0.01)
    index = LocalIndex.open(tmp_path / "ix")
    try:  # collect, as the killed run did
        BatchRun(BatchLedger(index), api, embedder, BatchOptions(poll_interval=0.01)).poll()  # type: ignore[arg-type]
    finally:
        index.close()
        api.close()
        embedder.close()
    waiting = _ledger_rows(tmp_path / "ix")
    assert waiting[:2] == (0, 0) and waiting[2] > 256
    result = cli(corpus, tmp_path / "ix", "--json")
    assert result.exit_code == 0, result.output
    summary = json_of(result.stdout)
    assert summary["embedded"] == 0 and summary["chunks"] == waiting[2], "every vector taken from the batch"
    assert embeddings_calls(sim) == 0
    assert _ledger_rows(tmp_path / "ix") == (0, 0, 0), "published, so no longer kept apart"
