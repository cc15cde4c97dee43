"""An index folder: manifest, SQLite catalog and FAISS vectors, opened together.

Readers work inside one SQLite read transaction (a snapshot), and use the FAISS file
of that snapshot's generation, so a search never mixes two states of the index. A
FAISS file that is missing or stale is rebuilt from the vectors kept in the catalog.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import vectors
from .catalog import BUSY_TIMEOUT, CATALOG_NAME, Catalog, connect
from .errors import IndexCorrupt, IndexExists, IndexNotFound
from .manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from .reader import Reader, catalog_generation
from .records import IndexStats

if TYPE_CHECKING:
    import faiss


class Index:
    """An opened index folder; safe to share between threads."""

    def __init__(self, folder: Path, manifest: Manifest, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.folder = folder
        self.manifest = manifest
        self.busy_timeout = busy_timeout  # seconds to wait on another process's lock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._vectors: tuple[int, faiss.Index] | None = None

    @classmethod
    def create(cls, folder: Path, manifest: Manifest) -> Index:
        """Create a new, empty index; the manifest is written last, so it marks a whole index."""
        if (folder / MANIFEST_NAME).exists():
            raise IndexExists(f"an index already exists at {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        connect(folder / CATALOG_NAME, create=True).close()
        write_manifest(folder, manifest)
        return cls(folder, manifest)

    @classmethod
    def open(cls, folder: Path, *, busy_timeout: float = BUSY_TIMEOUT) -> Index:
        """Open an existing index, or raise `IndexNotFound`."""
        if not (folder / MANIFEST_NAME).exists():
            raise IndexNotFound(f"no index at {folder}: run `semsearch ingest PATH --index {folder}` first")
        index = cls(folder, read_manifest(folder), busy_timeout=busy_timeout)
        catalog = index.catalog()  # fail now, not at the first query, if the catalog is broken
        vectors.remove_leftovers(folder, catalog_generation(catalog))  # of a writer killed mid-write
        return index

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
    def read(self) -> Iterator[Reader]:
        """A consistent snapshot of the index for the duration of the block."""
        catalog = self.catalog()
        with catalog.transaction(write=False):
            current = catalog_generation(catalog)
            # The FAISS index loads on the first dense search only: stats and lexical search never wait for it.
            yield Reader(catalog, lambda: self._vectors_for(catalog, current), self.manifest.dimension)

    def _vectors_for(self, catalog: Catalog, generation: int) -> faiss.Index:
        cached = self._vectors
        if cached is not None and cached[0] == generation:
            return cached[1]
        with self._lock:
            if self._vectors is None or self._vectors[0] != generation:
                self._vectors = (generation, self.load_vectors(catalog, generation))
            return self._vectors[1]

    def load_vectors(self, catalog: Catalog, generation: int) -> faiss.Index:
        """The FAISS index of a generation: its file if present, else rebuilt from the catalog."""
        path = vectors.file_for(self.folder, generation)
        if path.exists():
            try:
                index = vectors.load(path)
                if index.d == self.manifest.dimension:
                    return index
            except IndexCorrupt:
                pass  # rebuilt below from the catalog, which is the source of truth
        return self.rebuild_vectors(catalog)

    def rebuild_vectors(self, catalog: Catalog) -> faiss.Index:
        """A FAISS index built from every vector stored in the catalog."""
        index = vectors.new_index(self.manifest.dimension, self.manifest.index_type)
        for rows in catalog.stream("SELECT id, vector FROM chunks ORDER BY id"):
            ids = [row[0] for row in rows]
            vectors.add(index, ids, vectors.as_matrix([row[1] for row in rows], index.d))
        return index

    def stats(self) -> IndexStats:
        """Counts, model and size on disk."""
        with self.read() as reader:
            counts = reader.counts()
        size = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        return IndexStats(self.folder, counts, self.manifest, size)

    def close(self) -> None:
        """Close this thread's connection (other threads' close when they end)."""
        catalog = getattr(self._local, "catalog", None)
        if catalog is not None:
            self._local.catalog = None
            catalog.close()
