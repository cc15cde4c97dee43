"""Queries against one published snapshot of a Milvus index: passages, documents, counts, dense and BM25 search.

Every query ANDs the snapshot's visibility (`Published.visible()`: rows born at or before its generation, minus
retired documents) with the caller's filter, compiled by `filter_expr` for the connection's dialect (globs become
document ids, listed from the documents collection). Pages and full scans use `query_iterator`, which returns rows
in primary-key order (a plain `query` with a limit does not, on Milvus Lite). Every request goes through
`MilvusConnection.call` (errors mapped, reads retried).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import words
from ..facets import FACET_LIMIT, Facets, count_facets
from ..filters import Comparison, Filter
from ..globs import glob_matches
from ..manifest import Manifest
from ..records import CatalogCounts, ChunkRecord, DocumentRecord, StoredChunk, StoredDocument
from . import filter_expr
from .connection import Dialect, MilvusConnection, milvus_errors
from .meta import Published
from .schema import (
    CHUNK_FIELDS,
    DOCUMENT_FIELDS,
    CollectionNames,
    document_record,
    stored_chunk,
    stored_document,
    vector_bytes,
)

_BATCH = 1_000  # ids per `in [...]` list, rows per iterator batch
_TOP = 16_384  # Milvus's largest search limit (topk) and HNSW ef
_K1 = 1.2  # Milvus's BM25 k1 (b = 0.75)
_IDF_CACHE = 50_000  # (collection, generation, word) -> passages holding the word, shared by readers
_document_frequencies: dict[tuple[str, int, str], int] = {}
_full_text: dict[tuple[str, str], bool] = {}  # (URI, chunks collection) -> it has the BM25 fields (never changes)


class MilvusReader:
    """Queries against one published snapshot of a Milvus index (the `Reader` of `indexes.protocols`)."""

    def __init__(
        self, connection: MilvusConnection, names: CollectionNames, published: Published, manifest: Manifest
    ) -> None:
        self._connection = connection
        self._names = names
        self._published = published
        self._manifest = manifest
        self._dialect = connection.dialect
        self._visible = published.visible()
        self._consistency = published.consistency()
        self._expressions: dict[str, str] = {}  # by repr(filter): equal filters may differ (True == 1)

    # --- search -------------------------------------------------------------------------------

    def dense(
        self, query: np.ndarray, k: int, where: Filter | None = None, *, exact: bool = False
    ) -> list[tuple[int, float]]:
        """Nearest chunks to a normalised query vector: (chunk id, cosine), best first, `where` applied inside.

        Milvus Lite scans every vector (FLAT); a server searches HNSW with ef = max(64, k), or max(512, 4k) when
        `exact` (Milvus cannot scan exactly per query)."""
        expr = self._where(where)
        if k <= 0 or expr == filter_expr.FALSE:
            return []
        params: dict[str, Any] = {"metric_type": "IP"}
        if self._connection.dialect is Dialect.SERVER:
            params["params"] = {"ef": min(max(512, 4 * k) if exact else max(64, k), _TOP)}
        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        found = self._search("dense", vector, k, expr, params)
        return [(int(hit["chunk_id"]), float(hit["distance"])) for hit in found]

    def lexical(self, terms: Sequence[str], k: int, where: Filter | None = None) -> list[tuple[int, float]]:
        """BM25 over title, heading and text for any of the words: (chunk id, score), best first.

        The words are stemmed here (`indexes.words`, as the local store does) and matched against the pre-stemmed
        `words` field; empty when the store has no BM25 (`lexical_unavailable`)."""
        stems = words.query_words(terms)
        if not stems or k <= 0 or self.lexical_unavailable() is not None:
            return []
        expr = self._where(where)
        if expr == filter_expr.FALSE:
            return []
        found = self._search("sparse", " ".join(stems), k, expr, {"metric_type": "BM25"})
        sign = -1.0 if self._connection.dialect is Dialect.LITE else 1.0  # Lite gives BM25 as a negative distance
        return [(int(hit["chunk_id"]), sign * float(hit["distance"])) for hit in found]

    def lexical_unavailable(self) -> str | None:
        """Why this Milvus cannot search by words (Milvus servers before 2.5, or an index made on one), or None."""
        reason = self._connection.version.lexical_unavailable()
        if reason is not None or self._has_full_text():
            return reason
        return (
            f"the index's collections ({self._names.chunks}) were made on a Milvus without BM25 full-text search, "
            "so they have no field for it: hybrid search falls back to dense only, and lexical search is "
            "unavailable; to add it, copy the index out and back (semsearch migrate --to local, then --to milvus)"
        )

    def _has_full_text(self) -> bool:
        key = (self._connection.uri, self._names.chunks)
        if key not in _full_text:
            described = self._connection.call("describe_collection", self._names.chunks)
            _full_text[key] = any(field.get("name") == "sparse" for field in described.get("fields", []))
        return _full_text[key]

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """(k1 + 1) times the sum of the words' idf, Milvus's log(1 + (N - n + 0.5) / (n + 0.5)), over the
        snapshot's passages: no BM25 score of `lexical` passes it (0 without BM25)."""
        stems = words.query_words(terms)
        total = self._published.chunks
        if not stems or total <= 0 or self.lexical_unavailable() is not None:
            return 0.0
        idf = 0.0
        for word in stems:
            n = self._holding(word)
            idf += math.log(1 + (total - n + 0.5) / (n + 0.5))
        return (_K1 + 1) * idf

    def snippets(self, terms: Sequence[str], ids: Sequence[int]) -> dict[int, str]:
        """For each chunk that holds any of the words, its best fragment with them in <mark> tags."""
        wanted = set(words.query_words(terms))
        if not wanted or not ids:
            return {}
        rows = self._by_ids(self._names.chunks, "chunk_id", ids, ["chunk_id", "text"])
        marked = {int(row["chunk_id"]): words.snippet(row["text"], wanted) for row in rows}
        return {cid: text for cid, text in marked.items() if text is not None}

    # --- passages -----------------------------------------------------------------------------

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Passages by chunk id, with their document's path and title (missing ids left out)."""
        return {
            int(row["chunk_id"]): stored_chunk(row)
            for row in self._by_ids(self._names.chunks, "chunk_id", ids, CHUNK_FIELDS)
        }

    def passages_of(self, path: str) -> list[StoredChunk]:
        """A document's passages, in their order in it."""
        expr = self._and(f"path == {filter_expr.literal(path)}")
        found = [stored_chunk(row) for row in self._scan(self._names.chunks, expr, CHUNK_FIELDS)]
        return sorted(found, key=lambda stored: stored.chunk.ordinal)

    def documents_of(self, ids: Sequence[int]) -> dict[int, int]:
        """The document id of each chunk id."""
        rows = self._by_ids(self._names.chunks, "chunk_id", ids, ["chunk_id", "document_id"])
        return {int(row["chunk_id"]): int(row["document_id"]) for row in rows}

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, in the order given (missing ids left out)."""
        rows = self._by_ids(self._names.chunks, "chunk_id", ids, ["chunk_id", "dense"])
        found = {int(row["chunk_id"]): row["dense"] for row in rows}
        kept = [found[i] for i in ids if i in found]
        if not kept:
            return np.zeros((0, self._manifest.dimension), dtype=np.float32)
        return np.asarray(kept, dtype=np.float32)

    def all_chunks(self) -> Iterator[StoredChunk]:
        """Every passage, in chunk id order."""
        for row in self._scan(self._names.chunks, self._visible, CHUNK_FIELDS):
            yield stored_chunk(row)

    # --- documents ----------------------------------------------------------------------------

    def documents(self, where: Filter | None = None, *, after: int = 0, limit: int = -1) -> list[StoredDocument]:
        """Documents in id order: those after id `after` that match `where`, at most `limit` (-1: all)."""
        expr = self._where(where)
        if limit == 0 or expr == filter_expr.FALSE:
            return []
        expr = f"document_id > {int(after)} and {expr}"
        rows = self._scan(self._names.documents, expr, DOCUMENT_FIELDS, limit=limit)
        return [stored_document(row) for row in rows]

    def document(self, document_id: int) -> StoredDocument | None:
        """The document with this id, if there is one."""
        return self._one_document(f"document_id == {int(document_id)}")

    def document_at(self, path: str) -> StoredDocument | None:
        """The document stored under this path, if there is one."""
        return self._one_document(f"path == {filter_expr.literal(path)}")

    def generation(self) -> int:
        """The snapshot's generation: every publish (and attribute edit) makes a new one."""
        return self._published.generation

    def facets(self, limit: int = FACET_LIMIT) -> Facets:
        """Documents by file type and by attribute value: `limit` keys, `limit` values a key, most frequent first."""
        rows = self._scan(self._names.documents, self._visible, ["document_id", "type", "attributes"])
        return count_facets(((row["type"], row["attributes"] or {}) for row in rows), limit)

    def counts(self) -> CatalogCounts:
        """Documents, chunks and tokens in this snapshot (kept in the published row: Milvus has no sum)."""
        p = self._published
        return CatalogCounts(p.documents, p.chunks, p.tokens, p.generation, p.last_ingest)

    def export(self) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        """Every document with its passages (in order), text hashes and stored vectors: what `migrate` copies."""
        rows = self._scan(self._names.documents, self._visible, DOCUMENT_FIELDS)
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 100:
                yield from self._export(batch)
                batch = []
        yield from self._export(batch)

    def _export(self, documents: list[dict[str, Any]]) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        if not documents:
            return
        ids = ", ".join(str(int(row["document_id"])) for row in documents)
        fields = [*CHUNK_FIELDS, "text_hash", "dense"]
        passages: dict[int, list[tuple[int, ChunkRecord]]] = {}
        for row in self._scan(self._names.chunks, self._and(f"document_id in [{ids}]"), fields):
            record = ChunkRecord(stored_chunk(row).chunk, row["text_hash"], vector_bytes(row["dense"]))
            passages.setdefault(int(row["document_id"]), []).append((record.chunk.ordinal, record))
        for row in documents:
            found = sorted(passages.get(int(row["document_id"]), []), key=lambda item: item[0])
            yield document_record(row), [record for _, record in found]

    # --- plumbing -----------------------------------------------------------------------------

    def _where(self, where: Filter | None) -> str:
        """The snapshot's visibility AND `where` compiled (kept for this reader: hybrid asks twice)."""
        memo = repr(where)
        if memo not in self._expressions:
            compiled = filter_expr.TRUE if where is None else self._compile(where)
            self._expressions[memo] = filter_expr.FALSE if compiled == filter_expr.FALSE else self._and(compiled)
        return self._expressions[memo]

    def _compile(self, where: Filter) -> str:
        return filter_expr.expression(where, self._dialect, self._glob_documents)

    def _and(self, expr: str) -> str:
        return self._visible if expr == filter_expr.TRUE else f"({self._visible}) and {expr}"

    def _glob_documents(self, glob: Comparison) -> set[int]:
        """The visible documents whose value of the glob's key matches it: candidates by its literal start."""
        assert isinstance(glob.value, str)
        head = filter_expr.expression(filter_expr.glob_candidates(glob), self._dialect)
        if head == filter_expr.FALSE:
            return set()
        fields = ["document_id", filter_expr.output_field(glob.key)]
        return {
            int(row["document_id"])
            for row in self._scan(self._names.documents, self._and(head), fields)
            if (value := filter_expr.string_value(row, glob.key)) is not None and glob_matches(glob.value, value)
        }

    def _one_document(self, expr: str) -> StoredDocument | None:
        found = self._call(
            "query", self._names.documents, filter=self._and(expr), output_fields=DOCUMENT_FIELDS, limit=1
        )
        return stored_document(found[0]) if found else None

    def _holding(self, word: str) -> int:
        """How many visible passages hold a stemmed word (cached per collection, generation and word)."""
        key = (self._names.chunks, self._published.generation, word)
        found = _document_frequencies.get(key)  # read once: another thread may clear the cache meanwhile
        if found is None:
            expr = self._and(f"text_match(words, {filter_expr.literal(word)})")
            rows = self._call("query", self._names.chunks, filter=expr, output_fields=["count(*)"])
            found = int(rows[0]["count(*)"]) if rows else 0
            if len(_document_frequencies) >= _IDF_CACHE:
                _document_frequencies.clear()
            _document_frequencies[key] = found
        return found

    def _search(self, field: str, data: Any, k: int, expr: str, params: dict[str, Any]) -> list[Any]:
        found = self._call(
            "search",
            self._names.chunks,
            data=[data],
            anns_field=field,
            limit=min(k, _TOP),
            filter=expr,
            search_params=params,
            output_fields=["chunk_id"],
        )
        return list(found[0]) if found else []

    def _by_ids(self, collection: str, key: str, ids: Sequence[int], fields: list[str]) -> list[dict[str, Any]]:
        """The visible rows whose `key` is one of `ids`, in batches of 1,000 ids."""
        rows: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            expr = self._and(f"{key} in [{', '.join(map(str, part))}]")
            rows += self._call("query", collection, filter=expr, output_fields=fields, limit=len(part))
        return rows

    def _scan(self, collection: str, expr: str, fields: list[str], *, limit: int = -1) -> Iterator[dict[str, Any]]:
        """The rows matching `expr`, in primary-key order, `limit` at most (-1: all), fetched 1,000 at a time."""
        size = min(limit, _BATCH) if limit > 0 else _BATCH
        iterator = self._call(
            "query_iterator", collection, batch_size=size, limit=limit, filter=expr, output_fields=fields
        )
        try:
            while True:
                with milvus_errors(self._connection.uri, self._connection.timeout, transient=False):
                    batch = iterator.next()
                if not batch:
                    return
                yield from batch
        finally:
            iterator.close()

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._connection.call(method, *args, **kwargs, **self._consistency)
