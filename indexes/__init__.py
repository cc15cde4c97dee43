"""Indexes: passages, vectors and documents in a store, behind one seam (`protocols`).

The local store (FAISS segments beside a SQLite catalog, in the index folder) is the default; Milvus
(`indexes.milvus`, a Lite file or a server) is the other. `open_store`/`create_store` pick one from the
manifest; everything else talks to the `Index`, `Reader` and `IndexWriter` Protocols.
"""

from __future__ import annotations

from .batches import BatchLedger, RecordedBatch
from .errors import (
    DimensionMismatch,
    IndexBusy,
    IndexCorrupt,
    IndexExists,
    IndexNotFound,
    IndexStoreError,
    StoreUnavailable,
)
from .facets import Facets
from .filters import Comparison, Compound, Filter, all_of
from .globs import glob_matches
from .manifest import Manifest
from .protocols import Index, IndexWriter, Reader
from .reader import LocalReader
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
    storable,
)
from .store import LocalIndex
from .stores import STORES, MilvusOptions, create_store, open_store, store_exists
from .writer import LocalWriter

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
    "LocalIndex",
    "LocalReader",
    "LocalWriter",
    "MilvusOptions",
    "STORES",
    "StoreUnavailable",
    "Manifest",
    "PublishResult",
    "Reader",
    "RecordedBatch",
    "StagedDocument",
    "StoredChunk",
    "StoredDocument",
    "all_of",
    "create_store",
    "glob_matches",
    "open_store",
    "storable",
    "store_exists",
]
