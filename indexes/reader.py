"""Queries against one snapshot of an index: passages, documents, counts, dense and lexical search.

Filters arrive as values (`indexes.filters`) and are compiled here; lexical queries
arrive as words and are quoted here, so no caller writes SQL or FTS5 syntax.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import filter_sql, vectors
from .catalog import Catalog
from .filters import Filter
from .records import CatalogCounts, Chunk, DocumentRecord, StoredChunk, StoredDocument

if TYPE_CHECKING:
    import faiss

_CHUNK_COLUMNS = """c.id, c.document_id, d.path, d.title, c.ordinal, c.text, c.tokens, c.heading, c.page,
    c.page_end, c.char_start, c.char_end"""
_CHUNKS_JOINED = "chunks c JOIN documents d ON d.id = c.document_id"
_DOCUMENT_COLUMNS = """d.id, d.path, d.content_hash, d.type, d.title, d.size, d.mtime, d.pages,
    d.attributes, d.chunks, d.tokens, d.ingested_at"""
_BM25_K1 = 1.2  # FTS5's bm25() constant
_BATCH = 500  # ids per `IN (...)`: well under SQLite's limit on parameters


class Reader:
    """Queries against one snapshot of the index."""

    def __init__(self, catalog: Catalog, load_vectors: Callable[[], faiss.Index], dimension: int) -> None:
        self._catalog = catalog
        self._load_vectors = load_vectors
        self._dimension = dimension

    def allowed_chunks(self, where: Filter) -> np.ndarray:
        """Ids (int64, ascending) of the chunks whose document matches the filter."""
        condition, params = filter_sql.where(where)
        sql = f"SELECT id FROM chunks WHERE document_id IN (SELECT d.id FROM documents d WHERE {condition}) ORDER BY id"
        return np.fromiter((row[0] for row in self._catalog.rows(sql, params)), dtype=np.int64)

    def dense(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Nearest chunks to a query vector: (chunk id, cosine), best first; only `allowed` chunk ids if given."""
        return vectors.search(self._load_vectors(), query, k, allowed)

    def lexical(
        self, terms: Sequence[str], k: int, weights: Sequence[float] = (2.0, 1.5, 1.0), where: Filter | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over title, heading and text for any of the words: (chunk id, score), best first.

        With `where`, only chunks whose document matches the filter, in the same statement.
        """
        match = _match(terms)
        if not match or k <= 0:
            return []
        joins, condition, params = "", "", list[object]()
        if where is not None:
            joins = "JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id "
            sql_filter, params = filter_sql.where(where)
            condition = f"AND ({sql_filter}) "
        sql = (
            f"SELECT chunks_fts.rowid, -bm25(chunks_fts, ?, ?, ?) FROM chunks_fts {joins}"
            f"WHERE chunks_fts MATCH ? {condition}ORDER BY bm25(chunks_fts, ?, ?, ?) LIMIT ?"
        )
        rows = self._catalog.rows(sql, (*weights, match, *params, *weights, k))
        return [(int(r[0]), float(r[1])) for r in rows]

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """The most BM25 any passage could score for these words: FTS5's (k1 + 1) times the sum of their idf.

        FTS5 saturates each word's weighted frequency below k1 + 1, so `lexical` scores stay under this.
        """
        rows = int(self._catalog.value("SELECT count(*) FROM chunks"))
        total = 0.0
        for term in (t for t in terms if t):
            sql = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
            hits = int(self._catalog.value(sql, (_match([term]),)))
            total += max(math.log((rows - hits + 0.5) / (hits + 0.5)), 1e-6)  # FTS5's idf, floored as FTS5 does
        return (_BM25_K1 + 1) * total

    def snippets(self, terms: Sequence[str], ids: Sequence[int], *, tokens: int = 32) -> dict[int, str]:
        """For each chunk that holds any of the words, its best fragment with them in <mark> tags."""
        match = _match(terms)
        if not match or not ids:
            return {}
        sql = (
            "SELECT rowid, snippet(chunks_fts, 2, '<mark>', '</mark>', '…', ?) FROM chunks_fts "
            f"WHERE chunks_fts MATCH ? AND rowid IN ({_marks(ids)})"
        )
        return {int(row[0]): str(row[1]) for row in self._catalog.rows(sql, (tokens, match, *ids))}

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Passages by chunk id, with their document's path and title."""
        found: dict[int, StoredChunk] = {}
        for start in range(0, len(ids), _BATCH):
            part = list(ids[start : start + _BATCH])
            sql = f"SELECT {_CHUNK_COLUMNS} FROM {_CHUNKS_JOINED} WHERE c.id IN ({_marks(part)})"
            found.update((row[0], _stored_chunk(row)) for row in self._catalog.rows(sql, part))
        return found

    def documents_of(self, ids: Sequence[int]) -> dict[int, int]:
        """The document id of each chunk id."""
        if not ids:
            return {}
        return dict(self._catalog.rows(f"SELECT id, document_id FROM chunks WHERE id IN ({_marks(ids)})", list(ids)))

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, in the order given."""
        sql = f"SELECT id, vector FROM chunks WHERE id IN ({_marks(ids)})"
        found = dict(self._catalog.rows(sql, list(ids))) if ids else {}
        return vectors.as_matrix([found[i] for i in ids if i in found], self._dimension)

    def all_chunks(self) -> Iterator[StoredChunk]:
        """Every passage, in chunk id order."""
        sql = f"SELECT {_CHUNK_COLUMNS} FROM {_CHUNKS_JOINED} ORDER BY c.id"
        for rows in self._catalog.stream(sql):
            yield from (_stored_chunk(row) for row in rows)

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

    def counts(self) -> CatalogCounts:
        """Documents, chunks and tokens in this snapshot."""
        documents, last = self._catalog.rows("SELECT count(*), max(ingested_at) FROM documents")[0]
        chunks, tokens = self._catalog.rows("SELECT count(*), coalesce(sum(tokens), 0) FROM chunks")[0]
        return CatalogCounts(documents, chunks, tokens, catalog_generation(self._catalog), last)


def catalog_generation(catalog: Catalog) -> int:
    """The catalog's generation: how many publishes it has seen."""
    return int(catalog.value("SELECT value FROM meta WHERE key = 'generation'"))


def _match(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression: each word quoted (so none is syntax), joined by OR ("" if none)."""
    quoted = ['"' + term.replace('"', '""') + '"' for term in terms if term]
    return " OR ".join(quoted)


def _marks(ids: Sequence[object]) -> str:
    return ",".join("?" * len(ids))


def _document(row: tuple[Any, ...]) -> StoredDocument:
    doc_id, path, content_hash, kind, title, size, mtime, pages, attributes, chunks, tokens, ingested_at = row
    record = DocumentRecord(path, content_hash, kind, title, size, mtime, pages, json.loads(attributes or "{}"))
    return StoredDocument(doc_id, record, chunks, tokens, ingested_at)


def _stored_chunk(row: Sequence[Any]) -> StoredChunk:
    """A row of `_CHUNK_COLUMNS`: ids, document path and title, then the passage's own columns."""
    return StoredChunk(row[0], row[1], row[2], row[3], Chunk(*row[4:]))
