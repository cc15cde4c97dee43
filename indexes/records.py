"""Records going into the index and coming out of it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .manifest import Manifest
from .segments import SegmentInfo


def storable(value: Any) -> bool:
    """Whether every number in a JSON value is one both stores hold: an integer under 2^63 in size (Milvus's
    int64) or a finite double (no NaN or infinity)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(storable(item) for item in value)
    if isinstance(value, dict):
        return all(storable(item) for item in value.values())
    return False


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the catalog stores it (path is its key)."""

    path: str
    content_hash: str
    type: str
    title: str
    size: int = 0
    mtime: float = 0.0
    pages: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A passage as cut from a document: its text and where it sits. The one passage record.

    Ingest cuts it, `ChunkRecord` carries it into the catalog with its vector, `StoredChunk`
    brings it back with its ids, and a search `Hit` wraps that: no stage copies its fields.
    """

    ordinal: int
    text: str
    tokens: int
    heading: str = ""  # the heading path the passage sits under, "A > B"
    page: int | None = None
    page_end: int | None = None
    char_start: int | None = None
    char_end: int | None = None


@dataclass(frozen=True)
class ChunkRecord:
    """A passage with its vector, ready to be stored."""

    chunk: Chunk
    text_hash: str
    vector: bytes  # float32, little-endian, `dimension` values


@dataclass(frozen=True)
class StoredChunk:
    """A passage read back from the catalog, with its ids and its document's path and title."""

    chunk_id: int
    document_id: int
    path: str
    title: str
    chunk: Chunk

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def heading(self) -> str:
        return self.chunk.heading

    @property
    def page(self) -> int | None:
        return self.chunk.page

    def as_dict(self) -> dict[str, Any]:
        """The passage as the HTTP API and the MCP tools show it: ids, document, where it sits, its text."""
        chunk = self.chunk
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "path": self.path,
            "title": self.title,
            "page": chunk.page,
            "heading": chunk.heading,
            "char_start": chunk.char_start,
            "char_end": chunk.char_end,
            "text": chunk.text,
        }


@dataclass(frozen=True)
class KnownDocument:
    """What the catalog knows of a document, to decide whether it changed."""

    path: str
    content_hash: str
    size: int
    mtime: float


@dataclass(frozen=True)
class StagedDocument:
    """A document staged by an ingest that has not published yet."""

    path: str
    content_hash: str
    chunks: int
    tokens: int


@dataclass(frozen=True)
class PublishResult:
    """What one publish changed."""

    generation: int
    documents_written: int
    documents_removed: int
    chunks_added: int
    chunks_removed: int


@dataclass(frozen=True)
class StoredDocument:
    """A published document: its catalog id and record, with what its ingest counted."""

    id: int
    record: DocumentRecord
    chunks: int
    tokens: int
    ingested_at: float | None

    def as_dict(self) -> dict[str, Any]:
        """The document as the HTTP API and the MCP tools show it: id, file, attributes, passages."""
        record = self.record
        return {
            "id": self.id,
            "path": record.path,
            "title": record.title,
            "type": record.type,
            "size": record.size,
            "modified": record.mtime,
            "pages": record.pages,
            "attributes": record.attributes,
            "chunks": self.chunks,
        }


@dataclass(frozen=True)
class CatalogCounts:
    """Documents, passages and tokens of one snapshot, its generation and the last ingest's time."""

    documents: int
    chunks: int
    tokens: int
    generation: int
    last_ingest: float | None


@dataclass(frozen=True)
class IndexStats:
    """What an index holds (one snapshot's counts), what it was built with, and its size on disk."""

    folder: Path
    counts: CatalogCounts
    manifest: Manifest
    size_bytes: int
    segments: list[SegmentInfo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `semsearch stats` and `GET /stats` (times in ISO 8601 UTC, as the manifest's)."""
        manifest = self.manifest
        last = self.counts.last_ingest
        return {
            "index": str(self.folder),
            **asdict(self.counts),
            "last_ingest": datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds") if last else None,
            "store": manifest.store,
            "embedding_model": manifest.embedding_model,
            "dimension": manifest.dimension,
            "metric": manifest.metric,
            "index_type": manifest.index_type,
            "chunking": manifest.chunking,
            "created_at": manifest.created_at,
            "size_bytes": self.size_bytes,
            "vector_storage": manifest.vector_storage,
            "segments": [segment.as_dict() for segment in self.segments],
            "tombstones": sum(segment.tombstones for segment in self.segments),
            **(
                {"milvus": {"uri": manifest.milvus_uri, "collection": manifest.milvus_collection}}
                if manifest.store == "milvus"
                else {}
            ),
        }
