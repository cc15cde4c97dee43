"""The on-disk index: FAISS vectors beside a SQLite catalog, with a manifest."""

from __future__ import annotations

from .batches import BatchLedger, RecordedBatch
from .errors import DimensionMismatch, IndexBusy, IndexCorrupt, IndexExists, IndexNotFound, IndexStoreError
from .facets import Facets
from .filters import Comparison, Compound, Filter, all_of
from .globs import glob_matches
from .manifest import Manifest
from .reader import Reader
from .records import (
    CatalogCounts,
    Chunk,
    ChunkRecord,
    DocumentRecord,
    IndexStats,
    KnownDocument,
    PublishResult,
    StagedDocument,
    StoredChunk,
    StoredDocument,
)
from .store import Index
from .writer import IndexWriter

__all__ = [
    "Facets",
    "BatchLedger",
    "CatalogCounts",
    "Chunk",
    "ChunkRecord",
    "Comparison",
    "Compound",
    "DimensionMismatch",
    "DocumentRecord",
    "Filter",
    "Index",
    "IndexBusy",
    "IndexCorrupt",
    "IndexExists",
    "IndexNotFound",
    "IndexStats",
    "IndexStoreError",
    "IndexWriter",
    "KnownDocument",
    "Manifest",
    "PublishResult",
    "Reader",
    "RecordedBatch",
    "StagedDocument",
    "StoredChunk",
    "StoredDocument",
    "all_of",
    "glob_matches",
]
