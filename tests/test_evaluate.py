from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping, Sequence
from math import log2
from pathlib import Path

import pytest

from search.errors import DatasetError, SearchError
from search.evaluation.beir import (
    BeirDataset,
    CorpusRecord,
    EvalReport,
    evaluate,
    evaluate_per_query,
    load_beir,
    run_beir,
    trec_rank,
)

DATASETS = Path("/work/shared/datasets")

# -- metrics ------------------------------------------------------------------


def test_perfect_ranking_scores_one() -> None:
    qrels = {"q1": {"d1": 2, "d2": 1}}
    run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
    metrics = evaluate(qrels, run)
    assert metrics == {
        "ndcg@10": 1.0,
        "ndcg@100": 1.0,
        "recall@10": 1.0,
        "recall@100": 1.0,
        "mrr@10": 1.0,
        "mrr@100": 1.0,
    }


def test_graded_ndcg_matches_hand_computation() -> None:
    # grades a=3, b=2, c=1; d is judged non-relevant (0); run order c, d, a, b.
    # DCG@10  = 1/log2(2) + 0/log2(3) + 3/log2(4) + 2/log2(5) = 1 + 0 + 1.5 + 0.861353 = 3.361353
    # IDCG@10 = 3/log2(2) + 2/log2(3) + 1/log2(4)            = 3 + 1.261860 + 0.5   = 4.761860
    # nDCG@10 = 3.361353 / 4.761860 = 0.705891
    # nDCG@2  = (1 + 0) / (3 + 1.261860) = 0.234639
    qrels = {"q": {"a": 3, "b": 2, "c": 1, "d": 0}}
    run = {"q": {"c": 4.0, "d": 3.0, "a": 2.0, "b": 1.0}}
    metrics = evaluate(qrels, run, k_values=(2, 10))
    assert metrics["ndcg@10"] == pytest.approx(0.705891, abs=1e-6)
    assert metrics["ndcg@10"] == pytest.approx((1 + 3 / 2 + 2 / log2(5)) / (3 + 2 / log2(3) + 0.5))
    assert metrics["ndcg@2"] == pytest.approx(0.234639, abs=1e-6)


def test_negative_grades_count_as_zero() -> None:
    # e has grade -1: no gain when retrieved, and not part of the ideal ranking.
    # run e, a: DCG = 0 + 1/log2(3) = 0.630930; IDCG = 1/log2(2) = 1 -> nDCG 0.630930.
    qrels = {"q": {"a": 1, "e": -1}}
    run = {"q": {"e": 2.0, "a": 1.0}}
    metrics = evaluate(qrels, run, k_values=(10,))
    assert metrics["ndcg@10"] == pytest.approx(1 / log2(3))
    assert metrics["recall@10"] == 1.0
    assert metrics["mrr@10"] == 0.5


def test_recall_at_k() -> None:
    # 4 relevant docs (a, b, c, d); n is judged non-relevant. Run order a, n, x, b, c.
    # recall@1 = 1/4, recall@3 = 1/4 (n and x add nothing), recall@5 = 3/4 (a, b, c).
    qrels = {"q": {"a": 1, "b": 1, "c": 2, "d": 1, "n": 0}}
    run = {"q": {"a": 5.0, "n": 4.0, "x": 3.0, "b": 2.0, "c": 1.0}}
    metrics = evaluate(qrels, run, k_values=(1, 3, 5))
    assert metrics["recall@1"] == 0.25
    assert metrics["recall@3"] == 0.25
    assert metrics["recall@5"] == 0.75


def test_mrr_at_k() -> None:
    # q1: first relevant at rank 3 -> 1/3 at k=10, 0 at k=2.
    # q2: first relevant at rank 1 -> 1 at both cutoffs.
    # mrr@10 = (1/3 + 1) / 2 = 0.666667; mrr@2 = (0 + 1) / 2 = 0.5
    qrels = {"q1": {"a": 1, "z": 0}, "q2": {"b": 1}}
    run = {"q1": {"z": 3.0, "y": 2.0, "a": 1.0}, "q2": {"b": 1.0, "a": 0.5}}
    metrics = evaluate(qrels, run, k_values=(2, 10))
    assert metrics["mrr@10"] == pytest.approx(2 / 3)
    assert metrics["mrr@2"] == 0.5


def test_ties_break_by_doc_id_descending_like_trec_eval() -> None:
    # All three tie, so trec_eval orders c, b, a (strcmp, descending), whatever the input order.
    # The relevant doc a lands at rank 3: mrr@10 = 1/3, recall@2 = 0, nDCG@10 = 1/log2(4) = 0.5.
    assert trec_rank({"a": 1.0, "b": 1.0, "c": 1.0}) == ["c", "b", "a"]
    qrels = {"q": {"a": 1}}
    metrics = evaluate(qrels, {"q": {"a": 1.0, "b": 1.0, "c": 1.0}}, k_values=(2, 10))
    assert metrics["mrr@10"] == pytest.approx(1 / 3)
    assert metrics["recall@2"] == 0.0
    assert metrics["ndcg@10"] == 0.5


def test_tie_break_is_string_order_and_score_wins_first() -> None:
    # As strings "9" > "10" > "1"; the higher score still comes first.
    assert trec_rank({"1": 0.5, "10": 0.5, "9": 0.5, "2": 0.9}) == ["2", "9", "10", "1"]


def test_scores_equal_in_float32_are_ties() -> None:
    # trec_eval keeps scores as C float: 1.0 - 1e-9 rounds to 1.0 (a tie, so "b" first),
    # while 1.0 - 1e-6 stays below 1.0.
    assert trec_rank({"a": 1.0, "b": 1.0 - 1e-9}) == ["b", "a"]
    assert trec_rank({"a": 1.0, "b": 1.0 - 1e-6}) == ["a", "b"]


def test_identical_ids_are_removed_by_default() -> None:
    # The query's own id ranks first; dropping it puts d1 at rank 1 (mrr 1), keeping it rank 2 (mrr 1/2).
    qrels = {"q1": {"d1": 1}}
    run = {"q1": {"q1": 9.0, "d1": 1.0}}
    assert evaluate(qrels, run)["mrr@10"] == 1.0
    assert evaluate(qrels, run, ignore_identical_ids=False)["mrr@10"] == 0.5


def test_queries_without_results_count_as_zero() -> None:
    # q1 is perfect (1.0), q2 has no run and scores 0: mean = 0.5. q3 is unjudged and ignored.
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {"a": 1.0}, "q3": {"b": 1.0}}
    metrics = evaluate(qrels, run)
    assert metrics["ndcg@10"] == 0.5
    assert metrics["recall@100"] == 0.5
    per_query = evaluate_per_query(qrels, run)
    assert per_query["q2"]["mrr@10"] == 0.0
    assert set(per_query) == {"q1", "q2"}


def test_query_with_only_nonrelevant_judgments_scores_zero() -> None:
    qrels = {"q": {"a": 0}}
    assert evaluate(qrels, {"q": {"a": 1.0}}) == dict.fromkeys(evaluate(qrels, {}), 0.0)


def test_empty_qrels_and_bad_cutoffs_are_rejected() -> None:
    with pytest.raises(DatasetError, match="no judged queries"):
        evaluate({}, {})
    with pytest.raises(ValueError, match="positive"):
        evaluate({"q": {"a": 1}}, {}, k_values=(0, 10))


# -- loading ------------------------------------------------------------------

CORPUS: list[dict[str, object]] = [
    {"_id": "d1", "title": "Aeroelastic models", "text": "Heated wings.", "metadata": {}},
    {"_id": "d2", "title": "", "text": "Boundary layers."},
    {"_id": "d3", "text": "No title key at all."},
]
QUERIES = [
    {"_id": "q1", "text": "aeroelastic wings"},
    {"_id": "q2", "text": "boundary layer"},
    {"_id": "q3", "text": "not judged in this split"},
]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td3\t0\nq2\td2\t1\n"


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, object]], gz: bool = False) -> None:
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(lines)
    else:
        path.write_text(lines, encoding="utf-8")


def _make_beir(root: Path, gz: bool = False) -> Path:
    root.mkdir()
    _write_jsonl(root / ("corpus.jsonl.gz" if gz else "corpus.jsonl"), CORPUS, gz=gz)
    _write_jsonl(root / "queries.jsonl", QUERIES)
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(QRELS, encoding="utf-8")
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return _make_beir(tmp_path / "tiny")


@pytest.mark.parametrize("gz", [False, True], ids=["jsonl", "jsonl.gz"])
def test_load_tiny_beir_folder(tmp_path: Path, gz: bool) -> None:
    dataset = load_beir(_make_beir(tmp_path / "tiny", gz=gz))
    assert dataset.name == "tiny"
    assert dataset.queries == {"q1": "aeroelastic wings", "q2": "boundary layer"}
    assert dataset.qrels == {"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}}
    assert list(dataset.iter_corpus()) == [
        CorpusRecord("d1", "Aeroelastic models", "Heated wings."),
        CorpusRecord("d2", "", "Boundary layers."),
        CorpusRecord("d3", "", "No title key at all."),
    ]
    assert dataset.corpus_size() == 3


def test_iter_corpus_streams_lazily(tiny: Path) -> None:
    # A broken last line only fails when the iterator reaches it.
    with (tiny / "corpus.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    records = load_beir(tiny).iter_corpus()
    assert isinstance(records, Iterator)
    assert next(records).doc_id == "d1"
    with pytest.raises(DatasetError, match=r"corpus.jsonl:4: not valid JSON"):
        list(records)


def test_qrels_split_other_than_test(tiny: Path) -> None:
    (tiny / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td2\t1\n", encoding="utf-8")
    dataset = load_beir(tiny, split="dev")
    assert dataset.queries == {"q3": "not judged in this split"}


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        ("corpus.jsonl", "no corpus.jsonl or corpus.jsonl.gz"),
        ("queries.jsonl", "missing .*queries.jsonl"),
        ("qrels/test.tsv", "missing .*qrels/test.tsv"),
    ],
)
def test_missing_files_raise_dataset_error(tiny: Path, remove: str, expected: str) -> None:
    (tiny / remove).unlink()
    with pytest.raises(DatasetError, match=expected) as info:
        load_beir(tiny)
    assert "expected a BEIR folder" in str(info.value)


def test_missing_folder_and_split(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(DatasetError, match="is not a directory"):
        load_beir(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"missing .*qrels/train.tsv"):
        load_beir(tiny, split="train")


def test_malformed_files_name_file_and_line(tiny: Path) -> None:
    (tiny / "qrels" / "test.tsv").write_text(QRELS + "q2 d1 1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"test.tsv:5: expected 'query-id<TAB>corpus-id<TAB>score'"):
        load_beir(tiny)
    (tiny / "qrels" / "test.tsv").write_text(QRELS + "q9\td1\t1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="judges 1 queries missing from queries.jsonl"):
        load_beir(tiny)
    _write_jsonl(tiny / "queries.jsonl", [{"text": "no id"}])
    with pytest.raises(DatasetError, match=r"queries.jsonl:1: record has no '_id'"):
        load_beir(tiny)


def test_broken_gzip_corpus_raises_dataset_error(tmp_path: Path) -> None:
    root = _make_beir(tmp_path / "tiny", gz=True)
    (root / "corpus.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot be read"):
        list(load_beir(root).iter_corpus())


def test_dataset_error_is_a_search_error() -> None:
    assert issubclass(DatasetError, SearchError)


@pytest.mark.skipif(not (DATASETS / "scifact").is_dir(), reason="shared datasets not present")
def test_real_scifact_and_cranfield_counts() -> None:
    scifact = load_beir(DATASETS / "scifact")
    assert len(scifact.queries) == 300
    assert sum(len(docs) for docs in scifact.qrels.values()) == 339
    assert len(load_beir(DATASETS / "cranfield").queries) == 225


# -- driver -------------------------------------------------------------------


def test_run_beir_evaluates_every_query(tiny: Path) -> None:
    # q1 gets d3 (grade 0) then d1 (grade 2): mrr 1/2, nDCG = (2/log2(3)) / 2 = 0.630930.
    # q2 gets d2 first, then d1 which depth=1 cuts off: everything 1.0.
    hits = {
        "aeroelastic wings": [("d3", 0.9), ("d1", 0.8)],
        "boundary layer": [("d2", 0.7), ("d1", 0.6)],
    }
    calls: list[tuple[int, int]] = []
    dataset = load_beir(tiny)
    report = run_beir(dataset, lambda text: hits[text], depth=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]
    assert report.queries == 2 and len(report.latencies_ms) == 2
    assert report.metrics["mrr@10"] == pytest.approx((0.5 + 1.0) / 2)
    assert report.metrics["ndcg@10"] == pytest.approx((1 / log2(3) + 1.0) / 2)
    shallow = run_beir(dataset, lambda text: hits[text], depth=1)
    assert shallow.metrics["recall@100"] == pytest.approx((0.0 + 1.0) / 2)


def test_report_to_json_has_metrics_count_and_latency() -> None:
    report = EvalReport(metrics={"ndcg@10": 0.5}, queries=4, latencies_ms=[1.0, 2.0, 3.0, 4.0])
    assert report.to_json() == {
        "ndcg@10": 0.5,
        "queries": 4,
        "latency_p50_ms": 2.5,
        "latency_p95_ms": pytest.approx(3.85),  # linear interpolation: 3 + 0.85 * (4 - 3)
    }
    json.dumps(report.to_json())


def test_beir_dataset_repr_stays_short(tiny: Path) -> None:
    dataset: BeirDataset = load_beir(tiny)
    assert "qrels" not in repr(dataset)
