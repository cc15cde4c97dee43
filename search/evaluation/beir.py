"""Retrieval evaluation on a BEIR-layout test collection, scored as trec_eval scores it.

A BEIR folder holds `corpus.jsonl` (or `corpus.jsonl.gz`), `queries.jsonl` and
`qrels/<split>.tsv`. The metrics reproduce pytrec_eval (which BEIR uses): `ndcg@k` is
`ndcg_cut.k`, `recall@k` is `recall.k` and `mrr@k` is `recip_rank` cut at k.
"""

from __future__ import annotations

import gzip
import json
import math
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from search.errors import DatasetError

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]
Ranker = Callable[[str], list[tuple[str, float]]]

_LAYOUT = "expected a BEIR folder: corpus.jsonl or corpus.jsonl.gz, queries.jsonl, qrels/<split>.tsv"
_CORPUS_NAMES = ("corpus.jsonl", "corpus.jsonl.gz")


@dataclass(frozen=True)
class CorpusRecord:
    """One document of a BEIR corpus."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class BeirDataset:
    """Queries and judgments of one split; the corpus is streamed from disk on demand."""

    name: str
    corpus_path: Path
    queries: dict[str, str] = field(repr=False)  # only the queries judged in this split
    qrels: dict[str, dict[str, int]] = field(repr=False)

    def iter_corpus(self) -> Iterator[CorpusRecord]:
        """Yield the documents one at a time, in file order."""
        for line_no, row in _iter_jsonl(self.corpus_path):
            yield CorpusRecord(
                doc_id=_require_id(row, self.corpus_path, line_no),
                title=str(row.get("title") or ""),
                text=str(row.get("text") or ""),
            )

    def corpus_size(self) -> int:
        """Number of documents; reads (but does not parse) the whole corpus file."""
        with _open_text(self.corpus_path) as handle:
            return sum(1 for line in _guard(handle, self.corpus_path) if line.strip())


@dataclass(frozen=True)
class EvalReport:
    """Averaged metrics of one evaluation run and the latency of each query."""

    metrics: dict[str, float]
    queries: int
    latencies_ms: list[float] = field(repr=False)

    def to_json(self) -> dict[str, float | int]:
        """A JSON-ready dict: the metrics, `queries` and p50/p95 latency in milliseconds."""
        p50, p95 = percentiles(self.latencies_ms)
        return {**self.metrics, "queries": self.queries, "latency_p50_ms": p50, "latency_p95_ms": p95}


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """The median and the 95th percentile (0.0 and 0.0 for no values)."""
    data = list(values) or [0.0]
    return float(np.percentile(data, 50)), float(np.percentile(data, 95))


# -- loading ------------------------------------------------------------------


def load_beir(dataset_dir: Path, split: str = "test") -> BeirDataset:
    """Read the queries and qrels of `split`; the corpus is only located, not read."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise DatasetError(f"{dataset_dir} is not a directory; {_LAYOUT}")
    corpus = _find_corpus(dataset_dir)
    qrels = _read_qrels(_require_file(dataset_dir / "qrels" / f"{split}.tsv"))
    queries = _read_queries(_require_file(dataset_dir / "queries.jsonl"))
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise DatasetError(
            f"{dataset_dir}/qrels/{split}.tsv judges {len(missing)} queries missing "
            f"from queries.jsonl (first: {missing[0]!r})"
        )
    judged = {qid: text for qid, text in queries.items() if qid in qrels}
    return BeirDataset(dataset_dir.name, corpus, judged, qrels)


def _find_corpus(dataset_dir: Path) -> Path:
    for name in _CORPUS_NAMES:
        if (dataset_dir / name).is_file():
            return dataset_dir / name
    raise DatasetError(f"{dataset_dir} has no corpus.jsonl or corpus.jsonl.gz; {_LAYOUT}")


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise DatasetError(f"missing {path}; {_LAYOUT}")
    return path


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Parse `query-id<TAB>corpus-id<TAB>score` lines; a non-numeric first line is the header."""
    qrels: dict[str, dict[str, int]] = {}
    with _open_text(path) as handle:
        for line_no, line in enumerate(_guard(handle, path), start=1):
            cols = line.rstrip("\r\n").split("\t")
            if line_no == 1 and len(cols) == 3 and not _is_int(cols[2]):
                continue
            if not line.strip():
                continue
            if len(cols) != 3 or not _is_int(cols[2]):
                raise DatasetError(f"{path}:{line_no}: expected 'query-id<TAB>corpus-id<TAB>score'")
            qrels.setdefault(cols[0], {})[cols[1]] = int(cols[2])
    if not qrels:
        raise DatasetError(f"{path} has no judgments; expected 'query-id<TAB>corpus-id<TAB>score' rows")
    return qrels


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for line_no, row in _iter_jsonl(path):
        if not isinstance(row.get("text"), str):
            raise DatasetError(f"{path}:{line_no}: a query needs a string 'text'")
        queries[_require_id(row, path, line_no)] = row["text"]
    return queries


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line, reading lazily."""
    with _open_text(path) as handle:
        for line_no, line in enumerate(_guard(handle, path), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{line_no}: expected a JSON object per line")
            yield line_no, row


def _guard(handle: IO[str], path: Path) -> Iterator[str]:
    """Iterate lines, turning decoding and gzip failures into DatasetError."""
    try:
        yield from handle
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _require_id(row: Mapping[str, Any], path: Path, line_no: int) -> str:
    if "_id" not in row:
        raise DatasetError(f"{path}:{line_no}: record has no '_id'")
    return str(row["_id"])


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# -- metrics ------------------------------------------------------------------


def trec_rank(scores: Mapping[str, float]) -> list[str]:
    """Doc ids in trec_eval order: score descending, ties by doc id descending.

    trec_eval stores scores as C `float`, so scores equal in float32 are ties.
    """
    keyed = [(float(np.float32(score)), doc_id) for doc_id, score in scores.items()]
    keyed.sort(reverse=True)
    return [doc_id for _, doc_id in keyed]


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """trec_eval `ndcg_cut.k`: graded gain, 1/log2(rank+1) discount, grades <= 0 gain nothing."""
    gains = [judged.get(doc_id, 0) for doc_id in ranking[:k]]
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    ideal_dcg = _dcg(ideal)
    return _dcg(gains) / ideal_dcg if ideal_dcg > 0 else 0.0


def _dcg(gains: Sequence[int]) -> float:
    total = 0.0
    for i, gain in enumerate(gains):
        if gain > 0:  # summed in rank order, as trec_eval does, for identical rounding
            total += gain / math.log2(i + 2)
    return total


def recall_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """trec_eval `recall.k`: relevant (grade > 0) in the top k over all relevant."""
    relevant = sum(1 for g in judged.values() if g > 0)
    found = sum(1 for doc_id in ranking[:k] if judged.get(doc_id, 0) > 0)
    return found / relevant if relevant else 0.0


def mrr_at_k(ranking: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant (grade > 0) doc in the top k, else 0."""
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if judged.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


_METRICS = {"ndcg": ndcg_at_k, "recall": recall_at_k, "mrr": mrr_at_k}


def evaluate_per_query(
    qrels: Qrels, run: Run, k_values: Sequence[int] = (10, 100), *, ignore_identical_ids: bool = True
) -> dict[str, dict[str, float]]:
    """Metrics of every judged query; a query absent from `run` scores 0 everywhere.

    With `ignore_identical_ids` a doc whose id equals the query id is dropped, as BEIR does.
    """
    ks = _check_k_values(k_values)
    results: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        scores = run.get(qid, {})
        if ignore_identical_ids:
            scores = {doc_id: s for doc_id, s in scores.items() if doc_id != qid}
        ranking = trec_rank(scores)
        results[qid] = {f"{name}@{k}": metric(ranking, judged, k) for name, metric in _METRICS.items() for k in ks}
    return results


def evaluate(
    qrels: Qrels, run: Run, k_values: Sequence[int] = (10, 100), *, ignore_identical_ids: bool = True
) -> dict[str, float]:
    """Mean of each metric over all judged queries (queries without results count as 0)."""
    if not qrels:
        raise DatasetError("no judged queries to evaluate; check that the qrels split is not empty")
    per_query = evaluate_per_query(qrels, run, k_values, ignore_identical_ids=ignore_identical_ids)
    names = next(iter(per_query.values())).keys()
    return {name: math.fsum(m[name] for m in per_query.values()) / len(per_query) for name in names}


def _check_k_values(k_values: Sequence[int]) -> list[int]:
    ks = sorted(set(k_values))
    if not ks or ks[0] < 1:
        raise ValueError(f"k_values must be positive cutoffs, got {list(k_values)}")
    return ks


# -- driver -------------------------------------------------------------------


def run_beir(
    dataset: BeirDataset,
    rank: Ranker,
    *,
    depth: int = 100,
    progress: Callable[[int, int], None] | None = None,
    k_values: Sequence[int] = (10, 100),
) -> EvalReport:
    """Run `rank(query_text)` for every judged query and evaluate the top `depth` hits.

    `progress(done, total)` is called after each query.
    """
    run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    total = len(dataset.queries)
    for done, (qid, text) in enumerate(dataset.queries.items(), start=1):
        start = time.perf_counter()
        hits = rank(text)
        latencies.append((time.perf_counter() - start) * 1000.0)
        run[qid] = _hits_to_scores(hits[:depth])
        if progress is not None:
            progress(done, total)
    metrics = evaluate(dataset.qrels, run, k_values)
    return EvalReport(metrics=metrics, queries=total, latencies_ms=latencies)


def _hits_to_scores(hits: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Keep the first (best) score of a doc returned twice; trec_eval rejects duplicates."""
    scores: dict[str, float] = {}
    for doc_id, score in hits:
        scores.setdefault(doc_id, float(score))
    return scores
