"""Lexical search on one catalog snapshot: the full-text index asked, its answers checked against the snapshot.

The full-text index may run ahead of a snapshot (a publish adds there before the catalog
commits) or behind it (a publish deletes there after), so every hit is kept only if the
snapshot holds its chunk, asking deeper when too many are dropped. Filters are compiled to
SQL by `filter_sql`, as for every other query: the allowed documents come from the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import tantivy

from . import filter_sql
from .catalog import Catalog
from .filters import Filter
from .fulltext import FullText

_SLACK = 16  # hits asked beyond k, for the few a snapshot may lack
_POST_FILTER_DEPTH = 6_000  # a filter this wide is applied to an unfiltered list this deep, if it suffices
_BATCH = 500  # ids per `IN (...)`


class SnapshotLexical:
    """BM25 search, its ceiling and snippets for one snapshot of the catalog."""

    def __init__(self, catalog: Catalog, fulltext: FullText, generation: int) -> None:
        self._catalog = catalog
        self._fulltext = fulltext
        self._generation = generation
        self._searcher: tantivy.Searcher | None = None

    def searcher(self) -> tantivy.Searcher | None:
        """The full-text searcher for this snapshot (None while the index is missing)."""
        if self._searcher is None:
            self._searcher = self._fulltext.searcher(self._generation)
        return self._searcher

    def search(self, terms: Sequence[str], k: int, where: Filter | None) -> list[tuple[int, float]]:
        """The k best passages for any of the words: (chunk id, BM25), best first; only `where`'s documents."""
        words = self._fulltext.words(terms)
        searcher = self.searcher()
        if not words or k <= 0 or searcher is None:
            return []
        if where is None:
            return self._alive(searcher, self._fulltext.query(searcher, words), k)
        documents = self._documents(where)
        if not documents:
            return []
        share = len(documents) / max(self._count("SELECT coalesce(max(id), 0) FROM documents"), 1)  # O(log n)
        depth = math.ceil(2 * k / share)
        if depth <= _POST_FILTER_DEPTH:  # a wide filter: the unfiltered list, deep enough, holds k allowed
            found = self._alive(searcher, self._fulltext.query(searcher, words), depth, set(documents))
            if len(found) >= k:
                return found[:k]
        return self._alive(searcher, self._fulltext.query(searcher, words, documents), k)

    def _alive(
        self, searcher: tantivy.Searcher, query: tantivy.Query, k: int, documents: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The engine's best k hits whose document is in `documents` (if given) and that this snapshot holds."""
        depth = k + _SLACK
        while True:
            found = self._fulltext.search(searcher, query, depth)
            wanted = [(cid, score) for cid, score, document in found if documents is None or document in documents]
            kept: list[tuple[int, float]] = []
            for start in range(0, len(wanted), _BATCH):  # the best first: most queries need one batch
                part = wanted[start : start + _BATCH]
                live = self._live([cid for cid, _ in part])
                kept += [(cid, score) for cid, score in part if cid in live]
                if len(kept) >= k:
                    return kept[:k]
            if len(found) < depth:
                return kept
            depth *= 4

    def ceiling(self, terms: Sequence[str]) -> float:
        """The most BM25 any passage could score for these words (0 if none is indexed)."""
        searcher = self.searcher()
        return self._fulltext.ceiling(searcher, self._fulltext.words(terms)) if searcher is not None else 0.0

    def snippets(self, terms: Sequence[str], ids: Sequence[int]) -> dict[int, str]:
        """For each chunk that holds any of the words, its best fragment with them in <mark> tags."""
        words = self._fulltext.words(terms)
        searcher = self.searcher()
        if not words or not ids or searcher is None:
            return {}
        texts = dict(self._rows("SELECT id, text FROM chunks", ids))
        return self._fulltext.snippets(words, texts)

    def _documents(self, where: Filter) -> list[int]:
        condition, params = filter_sql.where(where)
        return [row[0] for row in self._catalog.rows(f"SELECT d.id FROM documents d WHERE {condition}", params)]

    def _live(self, ids: Sequence[int]) -> set[int]:
        """Those of these chunks that the snapshot holds."""
        return {row[0] for row in self._rows("SELECT id FROM chunks", ids)}

    def _rows(self, select: str, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), _BATCH):
            part = list(ids[start : start + _BATCH])
            rows += self._catalog.rows(f"{select} WHERE id IN ({','.join('?' * len(part))})", part)
        return rows

    def _count(self, sql: str) -> int:
        return int(self._catalog.value(sql))
