"""The command line, run in process through click's CliRunner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexes.manifest import read_manifest
from search import Settings
from search.cli.main import cli
from search.evaluation import vector_store_eval
from search.http import create_app

from .conftest import DATA, ServerThread
from .support.milvus import require_pymilvus
from .support.stores import STORE_IDS, STORES


@pytest.fixture(scope="module", params=STORES, ids=STORE_IDS)
def index_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    """The sample and formats folders ingested by the CLI, with `--store local` and `--store milvus` in turn."""
    if request.param == "milvus":
        require_pymilvus()
    folder = tmp_path_factory.mktemp("cli") / "ix"
    args = ["ingest", str(DATA / "sample"), str(DATA / "formats"), "--index", str(folder), "--store", request.param]
    result = CliRunner(env={"SEMSEARCH_CACHE_DIR": str(model_cache)}).invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder


def test_ingest_prints_a_summary_naming_skipped_files(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("ingest", str(DATA / "formats"), "--index", str(tmp_path / "ix"))
    assert result.exit_code == 0, result.output
    assert "Files:" in result.output and "chunks/s" in result.output
    assert "encrypted.pdf: encrypted PDF" in result.output
    assert "corrupt.pdf: corrupt PDF" in result.output
    again = run("ingest", str(DATA / "formats"), "--index", str(tmp_path / "ix"), "--json")
    summary = json.loads(again.output)
    assert summary["ingested"] == 0 and summary["unchanged"] > 0 and summary["embedded"] == 0
    assert {Path(s["path"]).name for s in summary["skipped"]} >= {"empty.txt", "binary.txt"}


def test_search_json_has_the_documented_shape(run, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("search", "who invented the printing press", "--index", str(index_dir), "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["query"] == "who invented the printing press"
    assert len(data["results"]) == 3
    first = data["results"][0]
    assert {"chunk_id", "document_id", "path", "title", "page", "text", "score"} <= set(first)
    assert first["path"].endswith("printing-press.html")


def test_search_for_people_trims_text_and_shows_pages(run, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("search", "evaporation from the oceans", "--index", str(index_dir), "-k", "2")
    assert result.exit_code == 0
    assert "water-cycle.pdf" in result.output and "p. " in result.output
    assert all(len(line) < 400 for line in result.output.splitlines())


def test_search_explain_shows_both_ranks(run, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run("search", "Gutenberg", "--index", str(index_dir), "--explain", "--json").output)
    assert "lexical_rank" in data["results"][0]["explain"]


def test_ask_is_extractive_and_cites(run, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(
        run("ask", "How do plants turn sunlight into energy?", "--index", str(index_dir), "--json").output
    )
    assert data["mode"] == "extractive"
    assert data["citations"] and data["citations"][0]["path"].endswith("photosynthesis.md")
    text = run("ask", "How do plants turn sunlight into energy?", "--index", str(index_dir)).output
    assert "[1]" in text and "extractive" in text


def test_stats(run, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(run("stats", "--index", str(index_dir), "--json").output)
    assert data["documents"] >= 10 and data["chunks"] > data["documents"]
    assert data["embedding_model"] == "local/all-MiniLM-L6-v2" and data["index_type"] == "auto"
    assert data["size_bytes"] > 0 and data["store"] == read_manifest(index_dir).store
    for key in ("created_at", "last_ingest"):  # both ISO 8601 in UTC, in the JSON and for people
        assert datetime.fromisoformat(data[key]).utcoffset() == timedelta(0)
    text = run("stats", "--index", str(index_dir)).output
    assert data["created_at"] in text and data["last_ingest"] in text
    chunking = data["chunking"]
    assert f"max tokens {chunking['max_tokens']}, overlap tokens {chunking['overlap_tokens']}" in text
    assert "{" not in text and "last ingest:" in text


def test_watch_summaries_name_the_model(tmp_path: Path, model_cache: Path) -> None:
    folder, log = tmp_path / "notes", tmp_path / "watch.log"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe alpha note talks about glaciers.")
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "from search.cli.main import main; main()", "ingest", str(folder)]
    command += ["--index", str(tmp_path / "ix")]
    with log.open("w") as out:
        process = subprocess.Popen([*command, "--watch", "--interval", "0.3"], env=env, stdout=out)
        try:
            _until(lambda: log.read_text().count("Files:") == 1)
            (folder / "b.md").write_text("# Beta\n\nThe beta note is about volcanoes.")
            _until(lambda: log.read_text().count("Files:") == 2)
        finally:
            process.terminate()
            process.wait(timeout=30)
    summaries = [line for line in log.read_text().splitlines() if line.startswith("Chunks:")]
    assert len(summaries) == 2 and all("sent to local/all-MiniLM-L6-v2)" in line for line in summaries)


def _until(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the watcher did not catch up"
        time.sleep(0.1)


def test_index_comes_from_the_environment(run, index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEMSEARCH_INDEX", str(index_dir))
    result = run("search", "chess", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["results"]


def test_default_index_is_outside_the_source_tree() -> None:
    from search.settings import Settings

    folder = Settings.from_env().index_dir
    assert Path(__file__).resolve().parents[1] not in folder.resolve().parents


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "   "], "empty"),
        (["search", "x", "-k", "0"], "-k"),
        (["search", "x", "-k", "1000"], "-k"),
        (["search", "x", "--mode", "fuzzy"], "--mode"),
    ],
)
def test_bad_input_exits_2_with_a_message(run, index_dir: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = run(*args, "--index", str(index_dir))
    assert result.exit_code == 2
    assert message in result.output


def test_missing_index_exits_2_and_says_how_to_make_one(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for command in (["search", "x"], ["ask", "x"], ["stats"]):
        result = run(*command, "--index", str(tmp_path / "none"))
        assert result.exit_code == 2
        assert "semsearch ingest" in result.output


def test_help_shows_examples_for_every_command(run) -> None:  # type: ignore[no-untyped-def]
    top = run("--help").output
    for command in ("ingest", "search", "ask", "serve", "stats", "eval"):
        assert command in top
        assert f"semsearch {command}" in run(command, "--help").output


def test_eval_on_a_tiny_beir_collection(run, tmp_path: Path, model_cache: Path) -> None:  # type: ignore[no-untyped-def]
    dataset = tmp_path / "tiny"
    (dataset / "qrels").mkdir(parents=True)
    docs = {
        "d1": ("Photosynthesis", "Plants turn sunlight into chemical energy in chloroplasts."),
        "d2": ("Printing press", "Gutenberg invented movable metal type printing around 1450."),
        "d3": ("Chess", "The bishop moves diagonally across the board."),
        "d4": ("Coffee", "Espresso forces hot water through finely ground coffee."),
    }
    (dataset / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in docs.items())
    )
    queries = {
        "q1": "how do plants make energy from light",
        "q2": "who made the first printing press",
        "q3": "how does a bishop move",
    }
    (dataset / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    result = run("eval", str(dataset), "--index", str(tmp_path / "ix"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["queries"] == 3 and data["mode"] == "hybrid"
    assert (
        data["ndcg@10"] == pytest.approx(1.0)
        and data["mrr@10"] == pytest.approx(1.0)
        and data["recall@100"] == pytest.approx(1.0)
    )
    lexical = json.loads(
        run("eval", str(dataset), "--index", str(tmp_path / "ix"), "--mode", "lexical", "--json").output
    )
    assert lexical["documents_ingested"] == 0, "the second run reuses the ingested index"
    assert 0 < lexical["ndcg@10"] <= 1
    # The same collection scored through OpenAI's vector-store search, by the official client, as any user would
    settings = Settings(index_dir=tmp_path / "ix", cache_dir=model_cache)
    with ServerThread(create_app(settings)) as server:
        wire = vector_store_eval.measure(dataset, f"{server.url}/v1", "none", "default", 50)
    assert wire.queries == 3 and wire.metrics["ndcg@10"] == pytest.approx(data["ndcg@10"])


def test_bench_commands_print_their_figures(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dataset = tmp_path / "tiny"
    (dataset / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": f"Doc {i}", "text": f"Text number {i} about topic {i}."} for i in range(6)]
    (dataset / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (dataset / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": f"topic {i}"}) + "\n" for i in range(3))
    )
    (dataset / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(3))
    )
    report = json.loads(run("bench", str(dataset), "--documents", "6", "--queries", "3", "--json").output)
    assert report["documents"] == 6 and report["chunks"] >= 6 and report["queries"] == 3
    assert report["ingest_chunks_per_second"] > 0 and report["model_chunks_per_second"] > 0
    assert set(report["search_hybrid_ms"]) == {"p50", "p95"} and report["http_lexical_ms"]["p50"] > 0
    rates = json.loads(run("bench-embeddings", "--seconds", "1", "--rpm", "600", "--tpm", "1000000", "--json").output)
    for side in ("paced", "naive_sequential"):
        assert rates[side]["requests_ok"] > 0 and rates[side]["http_429"] == 0 and rates[side]["fraction_of_tpm"] > 0


def test_optimize_on_either_store(run, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("optimize", "--index", str(index_dir), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    if read_manifest(index_dir).store == "milvus":  # Milvus merges its own segments: it is asked to compact
        assert report["compacted"] is True and report["store"] == "milvus"
    else:
        assert report["segments_after"] == 1 and report["tombstones_dropped"] == 0
    after = json.loads(run("search", "printing press", "--index", str(index_dir), "--json").output)
    assert after["results"][0]["path"].endswith("printing-press.html")


def test_the_store_comes_from_the_environment_and_an_index_keeps_its_own(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_pymilvus()
    monkeypatch.setenv("SEMSEARCH_STORE", "milvus")
    monkeypatch.setenv("SEMSEARCH_MILVUS_URI", str(tmp_path / "shared.db"))
    made = run("ingest", str(DATA / "sample" / "photosynthesis.md"), "--index", str(tmp_path / "ix"))
    assert made.exit_code == 0, made.output
    manifest = read_manifest(tmp_path / "ix")
    assert manifest.store == "milvus" and Path(manifest.milvus_uri) == tmp_path / "shared.db"
    assert (tmp_path / "shared.db").exists() and not (tmp_path / "ix" / "milvus.db").exists()
    local = run(
        "ingest", str(DATA / "sample" / "photosynthesis.md"), "--index", str(tmp_path / "loc"), "--store", "local"
    )
    assert local.exit_code == 0 and read_manifest(tmp_path / "loc").store == "local"
    again = run("ingest", str(DATA / "sample" / "photosynthesis.md"), "--index", str(tmp_path / "loc"))
    assert again.exit_code == 0, "an existing local index stays local whatever SEMSEARCH_STORE says"
    wrong = run("search", "sunlight", "--index", str(tmp_path / "loc"), "--store", "milvus")
    assert wrong.exit_code == 2 and "is in the local store, not milvus" in wrong.output and "migrate" in wrong.output


def test_batch_on_a_milvus_index_is_refused_before_anything_is_made(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # --batch needs an OpenAI model; nothing is sent
    args = ["ingest", str(DATA / "sample"), "--index", str(tmp_path / "ix"), "--store", "milvus", "--batch"]
    refused = run(*args, "--embedding-model", "openai/text-embedding-3-small")
    assert refused.exit_code == 2 and "--batch is not supported on a Milvus index" in refused.output
    assert not (tmp_path / "ix").exists()
