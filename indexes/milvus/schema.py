"""The four collections of a Milvus index, their fields, and rows to and from semsearch's records.

`{prefix}_chunks` holds the searchable passages (dense vector, BM25 `sparse` from the pre-stemmed `words`),
`{prefix}_documents` the catalog (published rows and staged ones, `born = STAGED`), `{prefix}_staged` the
staged passages with their vectors, `{prefix}_meta` the `published` row (meta.py). Milvus 2.3.5 has no
nullable fields: `NONE` (-1) stands for None in INT64 columns.

Primary keys are `chunk_key` and `document_key`, not the ids: `key = id * REVISIONS + revision`, so an
attribute edit republishes a document's rows under the same document and chunk ids (a new revision, born in
the new generation) while readers of the old generation keep the old rows. Key order is id order (one
revision of an id is visible at a time), which `query_iterator` pages rely on. Staged document rows have a
negative key from their path (`staged_key`) and `document_id = NONE`. The collections are built in layout.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..records import Chunk, DocumentRecord, StoredChunk, StoredDocument
from ..words import indexed
from .filter_expr import split_attributes
from .layout import MAX_PATH, MAX_TEXT, MAX_TYPE
from .layout import create_collections as create_collections
from .layout import drop_collections as drop_collections
from .layout import load_collections as load_collections
from .layout import missing_collections as missing_collections

STAGED = 2**62  # `born` of a staged document row: above every generation, so never visible
NONE = -1  # INT64 stand-in for None (pages, page, char offsets)
REVISIONS = 2**20  # revisions of one id (attribute edits) a key can hold
_DUMMY = [0.0, 0.0]  # the `_v` vector of collections that need one (Milvus < 2.6 requires a vector field)
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class CollectionNames:
    """The names of one index's collections, from its prefix (the manifest's `milvus_collection`)."""

    prefix: str

    @property
    def chunks(self) -> str:
        return f"{self.prefix}_chunks"

    @property
    def documents(self) -> str:
        return f"{self.prefix}_documents"

    @property
    def staged(self) -> str:
        return f"{self.prefix}_staged"

    @property
    def meta(self) -> str:
        return f"{self.prefix}_meta"

    def all(self) -> tuple[str, str, str, str]:
        return (self.chunks, self.documents, self.staged, self.meta)


def new_prefix(folder: Path) -> str:
    """A fresh prefix for an index at `folder`: `semsearch_<folder name>_<6 hex>` (Milvus allows [A-Za-z0-9_])."""
    name = _NAME_CHARS.sub("_", folder.name)[:40]
    return f"semsearch_{name}_{secrets.token_hex(3)}"


def key(identifier: int, revision: int = 0) -> int:
    """The primary key of revision `revision` of chunk or document `identifier`."""
    return identifier * REVISIONS + revision


def revision_of(row_key: int) -> int:
    return row_key % REVISIONS


def staged_key(path: str, ordinal: int | None = None) -> int:
    """A staged row's key, the same every time for the same path (and passage ordinal): staging again upserts.

    Negative for staged documents (they share the documents collection with published keys, which are >= 0).
    """
    text = path if ordinal is None else f"{path}\x00{ordinal}"
    value = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & (2**62 - 1)
    return -value - 1 if ordinal is None else value


def scan(conn: Any, collection: str, expr: str, fields: list[str], **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every row of `collection` matching `expr`, in primary-key order (`query_iterator`: no result-size limit)."""
    from .connection import milvus_errors

    with milvus_errors(conn.uri, conn.timeout, transient=False):
        pages = conn.client.query_iterator(
            collection, batch_size=1000, filter=expr, output_fields=fields, timeout=conn.timeout, **kwargs
        )
    try:
        while True:
            with milvus_errors(conn.uri, conn.timeout, transient=False):
                page = pages.next()
            if not page:
                return
            yield from page
    finally:
        pages.close()


def _none(value: int | None) -> int:
    return NONE if value is None else int(value)


def _some(value: Any) -> int | None:
    return None if value is None or int(value) == NONE else int(value)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (Milvus VARCHAR lengths are in bytes), at a character edge."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def vector_list(vector: bytes | np.ndarray | list[float]) -> list[float]:
    """A stored vector (float32 little-endian bytes, an array or a list) as Milvus takes it."""
    if isinstance(vector, bytes):
        return np.frombuffer(vector, dtype="<f4").tolist()  # type: ignore[no-any-return]
    return np.asarray(vector, dtype="<f4").tolist()  # type: ignore[no-any-return]


def vector_bytes(value: Any) -> bytes:
    """A `dense` field as read back, as float32 little-endian bytes (what `ChunkRecord.vector` holds)."""
    return np.asarray(value, dtype="<f4").tobytes()


def document_columns(record: DocumentRecord) -> dict[str, Any]:
    """The document fields every chunk and document row carries (attributes split by kind for filters)."""
    text, number, boolean = split_attributes(record.attributes)
    return {
        "path": record.path,
        "type": clip(record.type, MAX_TYPE),
        "title": clip(record.title, MAX_PATH),
        "size": int(record.size),
        "pages": _none(record.pages),
        "mtime": float(record.mtime),
        "attr_text": text,
        "attr_number": number,
        "attr_bool": boolean,
    }


def passage_columns(chunk: Chunk, text_hash: str) -> dict[str, Any]:
    """A passage's own fields (staged and published rows)."""
    return {
        "ordinal": chunk.ordinal,
        "tokens": chunk.tokens,
        "page": _none(chunk.page),
        "page_end": _none(chunk.page_end),
        "char_start": _none(chunk.char_start),
        "char_end": _none(chunk.char_end),
        "heading": clip(chunk.heading, MAX_PATH),
        "text": clip(chunk.text, MAX_TEXT),
        "text_hash": text_hash,
    }


def words_of(title: str, heading: str, text: str) -> str:
    """The `words` field: stems of the title and heading twice, then the text's (as the local full-text index)."""
    context = indexed(title + " \n " + heading)
    return clip(" ".join([context, context, indexed(text)]), MAX_TEXT)


def chunk_row(
    chunk_id: int,
    document_id: int,
    born: int,
    document: DocumentRecord,
    chunk: Chunk,
    text_hash: str,
    vector: bytes | np.ndarray | list[float],
    *,
    revision: int = 0,
    bm25: bool,
) -> dict[str, Any]:
    """A `{prefix}_chunks` row: a published passage with its document's fields."""
    row = {
        "chunk_key": key(chunk_id, revision),
        "chunk_id": chunk_id,
        "document_id": document_id,
        "born": born,
        **document_columns(document),
        **passage_columns(chunk, text_hash),
        "dense": vector_list(vector),
    }
    if bm25:
        row["words"] = words_of(document.title, chunk.heading, chunk.text)
    return row


def staged_row(path: str, chunk: Chunk, text_hash: str, vector: bytes | np.ndarray | list[float]) -> dict[str, Any]:
    """A `{prefix}_staged` row: a staged passage with its vector, keyed by (path, ordinal)."""
    return {
        "staged_id": staged_key(path, chunk.ordinal),
        "path": path,
        **passage_columns(chunk, text_hash),
        "dense": vector_list(vector),
    }


def document_row(
    document_id: int,
    born: int,
    record: DocumentRecord,
    chunks: int,
    tokens: int,
    ingested_at: float | None,
    *,
    revision: int = 0,
) -> dict[str, Any]:
    """A `{prefix}_documents` row; a staged one (`born = STAGED`) is keyed by its path, with no id yet."""
    staged = born == STAGED
    return {
        "document_key": staged_key(record.path) if staged else key(document_id, revision),
        "document_id": NONE if staged else document_id,
        "born": born,
        "content_hash": record.content_hash,
        **document_columns(record),
        "attributes": dict(record.attributes),
        "chunks": chunks,
        "tokens": tokens,
        "ingested_at": -1.0 if ingested_at is None else float(ingested_at),
        "_v": _DUMMY,
    }


PASSAGE_FIELDS = ["ordinal", "text", "tokens", "heading", "page", "page_end", "char_start", "char_end"]
CHUNK_FIELDS = ["chunk_key", "chunk_id", "document_id", "path", "title", *PASSAGE_FIELDS]
DOCUMENT_FIELDS = [
    "document_key",
    "document_id",
    "born",
    "path",
    "content_hash",
    "type",
    "title",
    "size",
    "mtime",
    "pages",
    "attributes",
    "chunks",
    "tokens",
    "ingested_at",
]


def passage(row: Mapping[str, Any]) -> Chunk:
    """The passage of a chunk or staged row."""
    return Chunk(
        ordinal=int(row["ordinal"]),
        text=row["text"],
        tokens=int(row["tokens"]),
        heading=row["heading"],
        page=_some(row["page"]),
        page_end=_some(row["page_end"]),
        char_start=_some(row["char_start"]),
        char_end=_some(row["char_end"]),
    )


def stored_chunk(row: Mapping[str, Any]) -> StoredChunk:
    """A chunk row (with `CHUNK_FIELDS`) as the reader returns it."""
    return StoredChunk(int(row["chunk_id"]), int(row["document_id"]), row["path"], row["title"], passage(row))


def document_record(row: Mapping[str, Any]) -> DocumentRecord:
    """A documents row (with `DOCUMENT_FIELDS`) as a `DocumentRecord`."""
    attributes = row["attributes"]
    if isinstance(attributes, (str, bytes)):
        attributes = json.loads(attributes)
    return DocumentRecord(
        path=row["path"],
        content_hash=row["content_hash"],
        type=row["type"],
        title=row["title"],
        size=int(row["size"]),
        mtime=float(row["mtime"]),
        pages=_some(row["pages"]),
        attributes=dict(attributes or {}),
    )


def stored_document(row: Mapping[str, Any]) -> StoredDocument:
    """A published documents row as the reader returns it."""
    ingested = float(row["ingested_at"])
    return StoredDocument(
        int(row["document_id"]),
        document_record(row),
        int(row["chunks"]),
        int(row["tokens"]),
        None if ingested < 0 else ingested,
    )
