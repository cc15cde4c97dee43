"""What the rest of semsearch may ask of an index, whatever holds it: the storage seam.

Two stores implement it: the local one (`LocalIndex`: FAISS segments beside a SQLite catalog, the
default) and Milvus (`indexes.milvus.MilvusIndex`: a Milvus Lite file or a Milvus server). Ingest,
search, the HTTP and OpenAI-wire APIs and the answerers only see these three Protocols, and
`indexes.stores` (`open_store`, `create_store`, `store_exists`) picks the store a manifest names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .facets import FACET_LIMIT, Facets
from .filters import Filter
from .manifest import Manifest
from .records import (
    CatalogCounts,
    ChunkRecord,
    DocumentRecord,
    IndexStats,
    KnownDocument,
    PublishResult,
    StagedDocument,
    StoredChunk,
    StoredDocument,
)

if TYPE_CHECKING:
    from .batches import BatchLedger
    from .merge import MergeResult


class Reader(Protocol):
    """Queries against one snapshot of an index: what a search, a page or a tool reads.

    A snapshot never changes under its reader: a publish after it opened is not seen, and nothing staged
    or half-published ever is.
    """

    def dense(
        self, query: np.ndarray, k: int, where: Filter | None = None, *, exact: bool = False
    ) -> list[tuple[int, float]]:
        """Nearest chunks to a normalised query vector: (chunk id, cosine), best first; with `where`, only
        chunks of documents matching it, applied inside the search (so a selective filter still gets k)."""
        ...

    def lexical(self, terms: Sequence[str], k: int, where: Filter | None = None) -> list[tuple[int, float]]:
        """BM25 over title, heading and text for any of the words: (chunk id, score), best first."""
        ...

    def lexical_ceiling(self, terms: Sequence[str]) -> float:
        """The most BM25 any passage could score for these words (0 when there is no lexical index)."""
        ...

    def lexical_unavailable(self) -> str | None:
        """Why this store cannot search by words (and what hybrid search does instead), or None when it can."""
        ...

    def snippets(self, terms: Sequence[str], ids: Sequence[int]) -> dict[int, str]:
        """A short extract of each passage around the words, matches in `<mark>`, the rest escaped."""
        ...

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """The passages with these ids (missing ids are left out)."""
        ...

    def passages_of(self, path: str) -> list[StoredChunk]:
        """Every passage of the document at `path`, in document order."""
        ...

    def documents_of(self, ids: Sequence[int]) -> dict[int, int]:
        """Chunk id -> document id."""
        ...

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, one row each, in the order asked."""
        ...

    def all_chunks(self) -> Iterator[StoredChunk]:
        """Every passage, in chunk id order."""
        ...

    def export(self) -> Iterator[tuple[DocumentRecord, list[ChunkRecord]]]:
        """Every document with its passages (in order), text hashes and stored vectors: what `migrate` copies."""
        ...

    def documents(self, where: Filter | None = None, *, after: int = 0, limit: int = -1) -> list[StoredDocument]:
        """Published documents matching `where`, by id, those with an id above `after`, at most `limit`."""
        ...

    def document(self, document_id: int) -> StoredDocument | None: ...

    def document_at(self, path: str) -> StoredDocument | None: ...

    def generation(self) -> int:
        """The snapshot's generation: it grows with every publish (caches key on it)."""
        ...

    def facets(self, limit: int = FACET_LIMIT) -> Facets: ...

    def counts(self) -> CatalogCounts: ...


class IndexWriter(Protocol):
    """The one writer of an index: stages documents as they are embedded, then publishes them at once.

    Staged work survives a crash (the next ingest takes it up without embedding it again) and is never
    visible to readers until `publish`, which makes everything staged visible in one step.
    """

    def __enter__(self) -> IndexWriter: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def known_documents(self) -> dict[str, KnownDocument]:
        """Published documents by path: what an ingest compares the folder with."""
        ...

    def staged_documents(self) -> dict[str, StagedDocument]:
        """Documents a previous ingest staged completely but did not publish, by path."""
        ...

    def stored_vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Vectors the index already holds for these passage texts (staged or published): never embedded twice."""
        ...

    def batch_vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Vectors a Batch API job delivered for these texts and no document has used yet."""
        ...

    def stage_many(self, documents: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> None:
        """Stage whole documents with their passages, in one step."""
        ...

    def stage_chunks(self, path: str, chunks: Sequence[ChunkRecord]) -> None:
        """Stage some passages of a large document (more follow; `stage_document` ends it)."""
        ...

    def stage_document(self, document: DocumentRecord, chunks: int, tokens: int) -> None:
        """Mark a document whose passages were staged by `stage_chunks` complete."""
        ...

    def unstage(self, paths: Iterable[str]) -> None:
        """Forget what was staged for these paths."""
        ...

    def touch(self, path: str, mtime: float) -> None:
        """Record a new modification time for an unchanged document (same content)."""
        ...

    def set_attributes(self, document_id: int, attributes: dict[str, Any]) -> None:
        """Replace a published document's attributes, visible at once."""
        ...

    def publish(self, removed: Iterable[str] = ()) -> PublishResult:
        """Make everything staged visible and the `removed` paths gone, in one step."""
        ...

    def remove(self, paths: Iterable[str]) -> PublishResult:
        """Remove these documents, in one step."""
        ...

    def finish(self) -> None:
        """Housekeeping at the end of every ingest, after its publish if it had one."""
        ...

    def ledger(self) -> BatchLedger:
        """The Batch API ledger of this index (`ingest --batch`)."""
        ...


class Index(Protocol):
    """An opened index, whatever holds its passages and vectors; safe to share between threads.

    The folder always exists: it holds the manifest (model, chunking, store) and the uploads.
    """

    folder: Path
    manifest: Manifest

    def read(self) -> AbstractContextManager[Reader]:
        """A snapshot of the index for the duration of the block."""
        ...

    def writer(self, *, wait: float = 0.0) -> IndexWriter:
        """The index's single writer, as a context manager (`wait`: seconds to wait for another one)."""
        ...

    def stats(self) -> IndexStats: ...

    def maintain(self, *, wait: float = 300.0) -> list[MergeResult]:
        """Background upkeep `serve` runs every SEMSEARCH_MERGE_INTERVAL (local: tiered merges)."""
        ...

    def optimize(self, *, wait: float = 300.0) -> MergeResult | None:
        """`semsearch optimize`: the index compacted for reading."""
        ...

    def ledger(self) -> BatchLedger:
        """The Batch API jobs recorded in this index, and the vectors they delivered."""
        ...

    def drop(self) -> None:
        """Delete what the index keeps outside its folder (a Milvus server's collections); the folder is the
        caller's to delete. The index is unusable afterwards."""
        ...

    def close(self) -> None: ...
