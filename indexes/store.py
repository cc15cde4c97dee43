"""An index folder: manifest, SQLite catalog and FAISS vector segments, opened together.

Readers work inside one SQLite read transaction (a snapshot), and search the segments
that snapshot names less its tombstones, so a search never mixes two states of the index.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import segments
from .catalog import BUSY_TIMEOUT, CATALOG_NAME, Catalog, connect
from .errors import IndexExists, IndexNotFound, IndexStoreError
from .fulltext import FullText
from .manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from .reader import LocalReader, catalog_generation
from .records import IndexStats
from .segments import SegmentSet
from .vectors import STORAGES

if TYPE_CHECKING:
    from .batches import BatchLedger
    from .merge import MergeResult
    from .writer import LocalWriter


class LocalIndex:
    """The local store: an index folder with its SQLite catalog, FAISS segments and full-text index; safe to
    share between threads."""

    def __init__(self, folder: Path, manifest: Manifest, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.folder = folder
        self.manifest = manifest
        self.busy_timeout = busy_timeout  # seconds to wait on another process's lock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._segments = segments.SegmentCache(folder)
        self._view: tuple[int, SegmentSet] | None = None
        self.fulltext = FullText(folder)  # one per Index: its readers share the searcher of a generation

    @classmethod
    def create(cls, folder: Path, manifest: Manifest) -> LocalIndex:
        """Create a new, empty index; the manifest is written last, so it marks a whole index."""
        if (folder / MANIFEST_NAME).exists():
            raise IndexExists(f"an index already exists at {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        connect(folder / CATALOG_NAME, create=True).close()
        write_manifest(folder, manifest)
        return cls(folder, manifest)

    @classmethod
    def open(cls, folder: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> LocalIndex:
        """Open an existing index, or raise `IndexNotFound`."""
        if not (folder / MANIFEST_NAME).exists():
            raise IndexNotFound(f"no index at {folder}: run `semsearch ingest PATH --index {folder}` first")
        index = cls(folder, read_manifest(folder), busy_timeout=busy_timeout)
        index.catalog()  # fail now, not at the first query, if the catalog is broken
        segments.remove_dead_temporaries(folder)  # of a writer killed mid-write
        index.repair_fulltext()
        return index

    def set_vector_storage(self, storage: str) -> None:
        """Keep the vectors of segments written from now on as `storage` (f32, f16 or sq8)."""
        if storage not in STORAGES:
            raise IndexStoreError(f"unknown vector storage {storage!r}; use one of {', '.join(STORAGES)}")
        if storage != self.manifest.vector_storage:
            self.manifest = replace(self.manifest, vector_storage=storage)
            write_manifest(self.folder, self.manifest)

    @classmethod
    def exists(cls, folder: Path) -> bool:
        """Whether `folder` holds an index."""
        return (folder / MANIFEST_NAME).exists()

    def catalog(self) -> Catalog:
        """This thread's connection to the catalog (for `indexes` itself; others use `read`)."""
        catalog: Catalog | None = getattr(self._local, "catalog", None)
        if catalog is None:
            catalog = connect(self.folder / CATALOG_NAME, busy_timeout=self.busy_timeout)
            self._local.catalog = catalog
        return catalog

    @contextmanager
    def read(self) -> Iterator[LocalReader]:
        """A consistent snapshot of the index for the duration of the block."""
        catalog = self.catalog()
        with catalog.transaction(write=False):
            current = catalog_generation(catalog)
            # Segments load on the first dense search only: stats and lexical search never wait for them.
            yield LocalReader(
                catalog, lambda: self.segment_set(catalog, current), self.manifest.dimension, self.fulltext
            )

    def segment_set(self, catalog: Catalog, generation: int) -> SegmentSet:
        """The vectors of the catalog's snapshot (at `generation`), as a set of segments."""
        cached = self._view
        if cached is not None and cached[0] == generation:
            return cached[1]
        with self._lock:
            cached = self._view
            if cached is None or cached[0] != generation:
                infos, legacy = segments.live(catalog), None
                if not infos and segments.has_legacy_vectors(catalog):  # written before segments existed
                    legacy = segments.legacy_segment(catalog, self.manifest.dimension)
                    infos = [segments.SegmentInfo(segments.LEGACY_SEGMENT, "", "flat", "f32", legacy.ntotal)]
                self._segments.keep(infos, {segments.LEGACY_SEGMENT: legacy} if legacy is not None else None)
                cached = (generation, segments.SegmentSet(infos, segments.dead_ids(catalog), self._segments.load))
                self._view = cached
            return cached[1]

    def writer(self, *, wait: float = 0.0) -> LocalWriter:
        """The index's single writer, as a context manager (`wait`: seconds to wait for another one)."""
        from .writer import LocalWriter  # the writer needs the index's parts: imported at use

        return LocalWriter(self, wait=wait)

    def ledger(self) -> BatchLedger:
        """The Batch API jobs recorded in this index, and the vectors they delivered."""
        from .batches import BatchLedger

        return BatchLedger(self)

    def maintain(self, *, wait: float = 300.0) -> list[MergeResult]:
        """The merges the segment policy asks for now (what `serve` runs in the background)."""
        from .merge import merge_now

        return merge_now(self, wait=wait)

    def optimize(self, *, wait: float = 300.0) -> MergeResult | None:
        """Every segment merged into one without deleted passages, then the catalog compacted."""
        from .merge import optimize

        return optimize(self, wait=wait)

    def repair_fulltext(self) -> None:
        """Bring the full-text index in line with the catalog if it is behind or missing (an upgraded
        index, a crash mid-publish), unless a writer holds it: that writer repairs it.
        """
        catalog = self.catalog()
        self.fulltext.sync(catalog, lambda: catalog_generation(catalog), wait=False)

    def stats(self) -> IndexStats:
        """Counts, model and size on disk."""
        with self.read() as reader:
            counts, live = reader.counts(), reader.segments()
        files = [*self.folder.iterdir(), *(self.folder / segments.SEGMENTS_DIR).glob("*"), *self.fulltext.files()]
        size = sum(_size(p) for p in files)
        return IndexStats(self.folder, counts, self.manifest, size, live)

    def drop(self) -> None:
        """Nothing: a local index is all in its folder."""

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they end)."""
        catalog = getattr(self._local, "catalog", None)
        if catalog is not None:
            self._local.catalog = None
            catalog.close()


def _size(path: Path) -> int:
    """A file's size; 0 for a folder, or a file gone since it was listed (another writer's temporary file)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0
