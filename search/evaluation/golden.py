"""Evaluation on a user's own golden set: queries with the documents (or pages) they expect.

A golden set is JSONL, one `{"query": "...", "expected": ["docs/a.md", "report.pdf#3"]}`
per line. An expected path matches a result whose path is it or ends with it; with
`#page`, the result must also come from that page. Reports hit@k, MRR@10, nDCG@10 and
recall@10 over the ranked distinct documents (or pages) of each query's results.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.errors import DatasetError
from search.retrieve import Hit

from .beir import mrr_at_k, ndcg_at_k, percentiles, recall_at_k

K_VALUES = (1, 3, 5, 10)


@dataclass(frozen=True)
class Expected:
    """A document the query should find, and optionally the page."""

    path: str
    page: int | None = None

    def matches(self, hit: Hit) -> bool:
        path, wanted = hit.path.replace("\\", "/"), self.path.replace("\\", "/").lstrip("./")
        if not (path == wanted or path.endswith("/" + wanted)):
            return False
        if self.page is None:
            return True
        return hit.page == self.page


@dataclass(frozen=True)
class GoldenQuery:
    query: str
    expected: tuple[Expected, ...]


def load_golden(path: Path) -> list[GoldenQuery]:
    """Read a golden set, saying which line is wrong and how."""
    queries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read the golden set {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if line.strip():
            queries.append(_parse(line, f"{path}:{number}"))
    if not queries:
        raise DatasetError(
            f"{path} has no queries; write one JSON object per line: "
            '{"query": "...", "expected": ["path", "path#page"]}'
        )
    return queries


def _parse(line: str, where: str) -> GoldenQuery:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: not JSON ({exc.msg})") from exc
    if not isinstance(row, dict) or not isinstance(row.get("query"), str) or not row["query"].strip():
        raise DatasetError(f'{where}: needs a non-empty "query" string')
    expected = row.get("expected")
    if isinstance(expected, str):
        expected = [expected]
    if not isinstance(expected, list) or not expected or not all(isinstance(e, str) and e for e in expected):
        raise DatasetError(f'{where}: "expected" must be a list of paths ("docs/a.md" or "report.pdf#3")')
    return GoldenQuery(row["query"], tuple(_expected(e, where) for e in expected))


def _expected(text: str, where: str) -> Expected:
    path, _, page = text.rpartition("#") if "#" in text else (text, "", "")
    if page and not page.isdigit():
        raise DatasetError(f"{where}: {text!r}: the part after # must be a page number")
    return Expected(path, int(page) if page else None)


def run_golden(queries: Sequence[GoldenQuery], search: Callable[[str], list[Hit]]) -> dict[str, Any]:
    """Run every query and average the metrics; `search` returns chunk hits, best first."""
    totals: dict[str, float] = {}
    latencies = []
    misses = []
    for item in queries:
        began = time.perf_counter()
        hits = search(item.query)
        latencies.append((time.perf_counter() - began) * 1000)
        relevant = _relevance(item, hits)
        for name, value in _metrics(relevant, len(item.expected)).items():
            totals[name] = totals.get(name, 0.0) + value
        if not any(relevant[:10]):
            misses.append(item.query)
    report: dict[str, Any] = {name: round(value / len(queries), 4) for name, value in totals.items()}
    p50, p95 = percentiles(latencies)
    report.update(
        {
            "queries": len(queries),
            "latency_p50_ms": round(p50, 2),
            "latency_p95_ms": round(p95, 2),
            "missed_in_top_10": misses[:20],
        }
    )
    return report


def _relevance(item: GoldenQuery, hits: list[Hit]) -> list[bool]:
    """For each distinct result (document, or page when pages are expected), whether it was expected."""
    by_page = any(e.page is not None for e in item.expected)
    seen: set[tuple[str, int | None]] = set()
    found: set[Expected] = set()
    relevant = []
    for hit in hits:
        key = (hit.path, hit.page if by_page else None)
        if key in seen:
            continue
        seen.add(key)
        match = next((e for e in item.expected if e not in found and e.matches(hit)), None)
        if match is not None:
            found.add(match)
        relevant.append(match is not None)
    return relevant


def _metrics(relevant: list[bool], expected: int) -> dict[str, float]:
    """The BEIR metrics over a ranking of results, binary relevance: expected ones never found count too."""
    ranking = [f"result{i}" for i in range(len(relevant))]
    judged = {f"result{i}": 1 for i, hit in enumerate(relevant) if hit}
    judged.update({f"missing{j}": 1 for j in range(expected - len(judged))})
    out = {f"hit@{k}": float(any(relevant[:k])) for k in K_VALUES}
    out["mrr@10"] = mrr_at_k(ranking, judged, 10)
    out["ndcg@10"] = ndcg_at_k(ranking, judged, 10)
    out["recall@10"] = recall_at_k(ranking, judged, 10)
    return out
