"""Queries against one snapshot of an index: passages, documents, counts, dense and lexical search.

Filters arrive as values (`indexes.filters`) and are compiled here; lexical queries
arrive as words, which the full-text index analyses (`indexes/lexical.py`), so no caller
writes SQL or query syntax.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import filter_sql, segments
from .catalog import Catalog
from .facets import FACET_LIMIT, Facets, read_facets
from .filters import Comparison, Filter
from .fulltext import FullText
from .lexical import SnapshotLexical
from .records import CatalogCounts, Chunk, ChunkRecord, DocumentRecord, StoredChunk, StoredDocument
from .segments import SegmentInfo, SegmentSet

_CHUNK_COLUMNS = """c.id, c.document_id, d.path, d.title, c.ordinal, c.text, c.tokens, c.heading, c.page,
    c.page_end, c.char_start, c.char_end"""
_CHUNKS_JOINED = "chunks c JOIN documents d ON d.id = c.document_id"
_DOCUMENT_COLUMNS = """d.id, d.path, d.content_hash, d.type, d.title, d.size, d.mtime, d.pages,
    d.attributes, d.chunks, d.tokens, d.ingested_at"""
_BATCH = 500  # ids per `IN (...)`: well under SQLite's limit on parameters


class LocalReader:
    """Queries against one snapshot of the index."""

    def __init__(
        self,
        catalog: Catalog,
        segment_set: Callable[[], SegmentSet],
        dimension: int,
        fulltext: FullText | None = None,
    ) -> None:
        self._catalog = catalog
        self._segment_set = segment_set
        self._dimension = dimension
        self._fulltext = fulltext  # the index's full-text folder (one per Index, so its searcher is shared)
        self._snapshot_lexical: SnapshotLexical | None = None
        self._allowed_by_filter: dict[str, np.ndarray] = {}  # by repr(filter): equal filters may differ (True == 1)

    def allowed_chunks(self, where: Filter) -> np.ndarray:
        """Ids (int64, ascending) of the chunks whose document matches the filter."""
        condition, params = filter_sql.where(where)
        sql = f"SELECT id FROM chunks WHERE document_id IN (SELECT d.id FROM documents d WHERE {condition}) ORDER BY id"
        return np.fromiter((row[0] for row in self._catalog.rows(sql, params)), dtype=np.int64)

    def dense(
        self, query: np.ndarray, k: int, where: Filter | None = None, *, exact: bool = False
    ) -> list[tuple[int, float]]:
        """Nearest chunks to a query vector: (chunk id, cosine), best first; with `where`, only chunks whose
        document matches it, inside the search (the ids it allows are read once per reader and filter).

        Large segments answer approximately (HNSW) unless `exact`; a filter makes every segment exact.
        """
        allowed = None if where is None else self._allowed(where)
        if allowed is not None and len(allowed) == 0:
            return []
        return self._segment_set().search(query, k, allowed, exact=exact)

    def _allowed(self, where: Filter) -> np.ndarray:
        """`allowed_chunks(where)`, kept for this reader: hybrid search asks twice (the feedback pass)."""
        memo = repr(where)  # not the filter itself: Comparison(k, "eq", True) == Comparison(k, "eq", 1)
        if memo not in self._allowed_by_filter:
            self._allowed_by_filter[memo] = self.allowed_chunks(where)
        return self._allowed_by_filter[memo]

    def segments(self) -> list[SegmentInfo]:
        """The snapshot's vector segments, with their tombstones."""
        return segments.live(self._catalog)

    def lexical(self, terms: Sequence[str], k: int, where: Filter | None = None) -> list[tuple[int, float]]:
        """BM25 over title, heading and text for any of the words: (chunk id, score), best first.

        With `where`, only chunks whose document matches the filter, inside the search.
        """
        return self._lexical().search(terms, k, where)

    def lexical_unavailable(self) -> str | None:
        """The local store always has its full-text index."""
        return None

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """The most BM25 any passage could score for these words: (k1 + 1) times the sum of their idf.

        BM25 saturates each word's frequency below k1 + 1, so `lexical` scores stay under this.
        """
        return self._lexical().ceiling(terms)

    def snippets(self, terms: Sequence[str], ids: Sequence[int]) -> dict[int, str]:
        """For each chunk that holds any of the words, its best fragment with them in <mark> tags."""
        return self._lexical().snippets(terms, ids)

    def _lexical(self) -> SnapshotLexical:
        if self._snapshot_lexical is None:
            fulltext = self._fulltext or FullText(self._catalog.path.parent)
            self._snapshot_lexical = SnapshotLexical(self._catalog, fulltext, catalog_generation(self._catalog))
        return self._snapshot_lexical

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Passages by chunk id, with their document's path and title."""
        found: dict[int, StoredChunk] = {}
        for start in range(0, len(ids), _BATCH):
            part = list(ids[start : start + _BATCH])
            sql = f"SELECT {_CHUNK_COLUMNS} FROM {_CHUNKS_JOINED} WHERE c.id IN ({_marks(part)})"
            found.update((row[0], _stored_chunk(row)) for row in self._catalog.rows(sql, part))
        return found

    def passages_of(self, path: str) -> list[StoredChunk]:
        """A document's passages, in their order in it."""
        ids = self.allowed_chunks(Comparison("path", "eq", path)).tolist()
        return sorted(self.chunks(ids).values(), key=lambda stored: stored.chunk.ordinal)

    def documents_of(self, ids: Sequence[int]) -> dict[int, int]:
        """The document id of each chunk id."""
        if not ids:
            return {}
        return dict(self._catalog.rows(f"SELECT id, document_id FROM chunks WHERE id IN ({_marks(ids)})", list(ids)))

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, in the order given (read from their segments)."""
        located: list[tuple[int, int | None]] = []
        for start in range(0, len(ids), _BATCH):
            part = list(ids[start : start + _BATCH])
            located += self._catalog.rows(f"SELECT id, segment FROM chunks WHERE id IN ({_marks(part)})", part)
        found = self._segment_set().vectors(located) if located else {}
        rows = [found[i] for i in ids if i in found]
        return np.vstack(rows) if rows else np.zeros((0, self._dimension), dtype=np.float32)

    def all_chunks(self) -> Iterator[StoredChunk]:
        """Every passage, in chunk id order."""
        sql = f"SELECT {_CHUNK_COLUMNS} FROM {_CHUNKS_JOINED} ORDER BY c.id"
        for rows in self._catalog.stream(sql):
            yield from (_stored_chunk(row) for row in rows)

    def export(self) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        """Every document with its passages (in order), text hashes and stored vectors: what `migrate` copies."""
        for document in self.documents():
            sql = (
                f"SELECT {_CHUNK_COLUMNS}, c.text_hash FROM {_CHUNKS_JOINED} WHERE c.document_id = ? ORDER BY c.ordinal"
            )
            rows = self._catalog.rows(sql, (document.id,))
            vectors = self.vectors([row[0] for row in rows])
            records = [
                ChunkRecord(_stored_chunk(row[:-1]).chunk, row[-1], vector.astype("<f4").tobytes())
                for row, vector in zip(rows, vectors, strict=True)
            ]
            yield document.record, records

    def documents(self, where: Filter | None = None, *, after: int = 0, limit: int = -1) -> list[StoredDocument]:
        """Documents in id order: those after id `after` that match `where`, at most `limit` (-1: all)."""
        condition, params = filter_sql.where(where) if where is not None else ("1", [])
        sql = f"SELECT {_DOCUMENT_COLUMNS} FROM documents d WHERE d.id > ? AND ({condition}) ORDER BY d.id LIMIT ?"
        return [_document(row) for row in self._catalog.rows(sql, (after, *params, limit))]

    def document(self, document_id: int) -> StoredDocument | None:
        """The document with this id, if there is one."""
        row = self._catalog.row(f"SELECT {_DOCUMENT_COLUMNS} FROM documents d WHERE d.id = ?", (document_id,))
        return _document(row) if row else None

    def document_at(self, path: str) -> StoredDocument | None:
        """The document stored under this path, if there is one."""
        row = self._catalog.row(f"SELECT {_DOCUMENT_COLUMNS} FROM documents d WHERE d.path = ?", (path,))
        return _document(row) if row else None

    def generation(self) -> int:
        """How many publishes (and attribute edits) the catalog has seen: what a reader's caches key on."""
        return catalog_generation(self._catalog)

    def facets(self, limit: int = FACET_LIMIT) -> Facets:
        """Documents by file type and by attribute value: `limit` keys, `limit` values a key, most frequent first."""
        return read_facets(self._catalog, limit)

    def counts(self) -> CatalogCounts:
        """Documents, chunks and tokens in this snapshot."""
        documents, last = self._catalog.rows("SELECT count(*), max(ingested_at) FROM documents")[0]
        chunks, tokens = self._catalog.rows("SELECT count(*), coalesce(sum(tokens), 0) FROM chunks")[0]
        return CatalogCounts(documents, chunks, tokens, catalog_generation(self._catalog), last)


def catalog_generation(catalog: Catalog) -> int:
    """The catalog's generation: how many publishes it has seen."""
    return int(catalog.value("SELECT value FROM meta WHERE key = 'generation'"))


def _marks(ids: Sequence[object]) -> str:
    return ",".join("?" * len(ids))


def _document(row: tuple[Any, ...]) -> StoredDocument:
    doc_id, path, content_hash, kind, title, size, mtime, pages, attributes, chunks, tokens, ingested_at = row
    record = DocumentRecord(path, content_hash, kind, title, size, mtime, pages, json.loads(attributes or "{}"))
    return StoredDocument(doc_id, record, chunks, tokens, ingested_at)


def _stored_chunk(row: Sequence[Any]) -> StoredChunk:
    """A row of `_CHUNK_COLUMNS`: ids, document path and title, then the passage's own columns."""
    return StoredChunk(row[0], row[1], row[2], row[3], Chunk(*row[4:]))
