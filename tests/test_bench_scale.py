"""`semsearch bench-scale` at a small size: every figure is printed and sane (timings are not asserted)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from search.evaluation import synthetic


def test_bench_scale_prints_every_figure(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    index = tmp_path / "scale"
    result = run("bench-scale", "--chunks", "2000", "--queries", "20", "--index", str(index), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["index"]["chunks"] == 2000 and report["ingest"]["chunks"] == 2000
    assert report["ingest"]["chunks_per_second"] > 0 and report["ingest"]["cpu_seconds"] > 0
    assert report["index"]["disk_bytes"] > 2000 * 384 * 4  # at least the vectors
    assert report["serve"]["cold_start_seconds"] > 0 and report["serve"]["rss_bytes"] > 0
    for connections in ("1_connections", "8_connections"):
        for name in ("floor", "dense", "lexical", "hybrid"):
            figures = report["http"][connections][name]
            assert 0 < figures["p50_ms"] <= figures["p95_ms"] and figures["req_per_s"] > 0
    assert report["recall_at_10"] is None or 0 <= report["recall_at_10"] <= 1
    added = report["add_one_document"]
    assert added["chunks"] == 4 and added["visible_to_server"] is True

    again = run("bench-scale", "--chunks", "2000", "--queries", "20", "--index", str(index), "--reuse")
    assert again.exit_code == 0, again.output
    assert "reused the index" in again.output and "recall@10" in again.output and "hybrid" in again.output


def test_an_index_in_the_way_needs_reuse_and_the_same_size(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    index = tmp_path / "scale"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("some words")
    assert (
        run("ingest", str(tmp_path / "data"), "--index", str(index), "--embedding-model", "hash/bow-384").exit_code == 0
    )
    refused = run("bench-scale", "--chunks", "500", "--index", str(index))
    assert refused.exit_code == 2 and "--reuse" in refused.output
    mismatched = run("bench-scale", "--chunks", "500", "--index", str(index), "--reuse")
    assert mismatched.exit_code == 2 and "holds 1 chunks, not 500" in mismatched.output


def test_the_corpus_is_deterministic_and_sized_as_asked(tmp_path: Path) -> None:
    vocabulary = synthetic.Vocabulary.zipf()
    texts = synthetic.passages(vocabulary, 300)
    assert texts == synthetic.passages(synthetic.Vocabulary.zipf(), 300)
    assert all(synthetic.MIN_WORDS <= len(t.split()) <= synthetic.MAX_WORDS for t in texts)
    common = sum(w.strip(".").lower() in synthetic.COMMON_WORDS for t in texts for w in t.split())
    assert 0.3 < common / sum(len(t.split()) for t in texts) < 0.5
    documents = synthetic.documents(texts, "synthetic")
    assert sum(len(d.blocks) for d in documents) == 300
    assert synthetic.queries(texts, 12) == synthetic.queries(texts, 12)


def test_words_can_be_sampled_from_a_beir_corpus(tmp_path: Path) -> None:
    lines = [{"_id": "1", "title": "Zebrafish", "text": "zebrafish fins regrow quickly"}, {"_id": "2", "text": "fins"}]
    with gzip.open(tmp_path / "corpus.jsonl.gz", "wt") as file:
        file.write("".join(json.dumps(line) + "\n" for line in lines))
    vocabulary = synthetic.Vocabulary.sampled_from(tmp_path)
    assert vocabulary.source == tmp_path.name and vocabulary.words[0] == "fins"
    words = {w.strip(".").lower() for t in synthetic.passages(vocabulary, 5) for w in t.split()}
    assert words <= {"zebrafish", "fins", "regrow", "quickly"}


def test_side_by_side_runs_with_what_is_installed() -> None:
    from search.evaluation.side_by_side import format_table, run_side_by_side

    report = run_side_by_side(400, 5, ["faiss-flat", "faiss-hnsw", "semsearch", "chroma"])
    rows = {row["name"]: row for row in report["results"]}
    assert rows["faiss flat"]["recall_at_10"] == 1.0  # the exact search the others are scored against
    assert {"faiss HNSW32 ef16", "semsearch reader.dense", "semsearch search(dense)"} <= set(rows)
    assert all(0 <= row["recall_at_10"] <= 1 and 0 < row["p50_ms"] <= row["p95_ms"] for row in rows.values())
    assert "chroma" in report["skipped"] or any(name.startswith("chroma") for name in rows)
    assert "| semsearch reader.dense |" in format_table(report)
