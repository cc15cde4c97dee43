"""The on-disk index: FAISS vectors beside a SQLite catalog, with a manifest."""

from __future__ import annotations

from .errors import DimensionMismatch, IndexBusy, IndexCorrupt, IndexExists, IndexNotFound, IndexStoreError
from .manifest import Manifest
from .records import ChunkRecord, DocumentRecord, KnownDocument, PublishResult, StagedDocument, StoredChunk
from .store import Index, Reader
from .writer import IndexWriter

__all__ = [
    "ChunkRecord",
    "DimensionMismatch",
    "DocumentRecord",
    "Index",
    "IndexBusy",
    "IndexCorrupt",
    "IndexExists",
    "IndexNotFound",
    "IndexStoreError",
    "IndexWriter",
    "KnownDocument",
    "Manifest",
    "PublishResult",
    "Reader",
    "StagedDocument",
    "StoredChunk",
]
