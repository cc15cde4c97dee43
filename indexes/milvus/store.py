"""An index whose passages and vectors live in Milvus (a Lite file or a server); its folder keeps the manifest.

The folder holds `config.json` (store "milvus", the URI and the collections' prefix; never a token), the write
lock and uploads; a Milvus Lite file defaults to `milvus.db` inside it. Readers take the committed `published`
row (meta.py) at most a second old, or the one this process just committed, so a reader opened before a
publish never sees it and one opened after always does.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IndexCorrupt, IndexExists, IndexStoreError
from ..manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest, write_manifest
from ..records import CatalogCounts, IndexStats
from .connection import MilvusConnection, connect, is_remote
from .layout import create_collections, drop_collections, load_collections, missing_collections
from .meta import Published, read_published
from .schema import CollectionNames, new_prefix

if TYPE_CHECKING:
    from ..batches import BatchLedger
    from ..merge import MergeResult
    from ..stores import MilvusOptions
    from .reader import MilvusReader
    from .writer import MilvusWriter

LITE_FILE = "milvus.db"  # a new index's Milvus Lite file, inside its folder, when no URI is given
REFRESH = 1.0  # seconds a process reuses the published row before reading it again
NO_BATCH = "`ingest --batch` is not supported on a Milvus index yet: ingest without --batch"


class MilvusIndex:
    """An index in Milvus (the `Index` of `indexes.protocols`): four collections named by the manifest's prefix."""

    def __init__(self, folder: Path, manifest: Manifest, connection: MilvusConnection, names: CollectionNames) -> None:
        self.folder = folder
        self.manifest = manifest
        self.connection = connection
        self.names = names
        self._lock = threading.Lock()
        self._published: tuple[float, Published] | None = None

    @classmethod
    def create(cls, folder: Path, manifest: Manifest, options: MilvusOptions) -> MilvusIndex:
        """Create the collections, then write the manifest last: it marks a whole index."""
        if (folder / MANIFEST_NAME).exists():
            raise IndexExists(f"an index already exists at {folder}")
        made = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        # A given URI stands in for a server's (the cluster moved); a Milvus Lite file stays its index's own.
        given = options.uri if is_remote(manifest.milvus_uri) or not manifest.milvus_uri else ""
        uri = resolve_uri(folder, given or manifest.milvus_uri, relative_to_folder=not given)
        names = CollectionNames(manifest.milvus_collection or new_prefix(folder))
        try:
            connection = connect(uri, options.token, options.timeout)
        except BaseException:
            if made:  # a Milvus that cannot be reached leaves no empty index folder behind
                shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            create_collections(connection, names, manifest.dimension, bm25=connection.supports_bm25)
            load_collections(connection, names)
        except BaseException:
            connection.close()
            raise
        manifest = replace(
            manifest,
            store="milvus",
            milvus_uri=stored_uri(folder, uri),
            milvus_collection=names.prefix,
            format_version=FORMAT_VERSION,
        )
        write_manifest(folder, manifest)
        return cls(folder, manifest, connection, names)

    @classmethod
    def open(cls, folder: Path, manifest: Manifest, options: MilvusOptions) -> MilvusIndex:
        """Connect to the index's Milvus and load its collections; IndexCorrupt names any that are missing."""
        # A given URI stands in for a server's (the cluster moved); a Milvus Lite file stays its index's own.
        given = options.uri if is_remote(manifest.milvus_uri) or not manifest.milvus_uri else ""
        uri = resolve_uri(folder, given or manifest.milvus_uri, relative_to_folder=not given)
        if not manifest.milvus_collection:
            raise IndexCorrupt(f"{folder / MANIFEST_NAME} names no Milvus collection (milvus_collection)")
        names = CollectionNames(manifest.milvus_collection)
        connection = connect(uri, options.token, options.timeout)
        try:
            missing = missing_collections(connection, names)
            if missing:
                raise IndexCorrupt(
                    f"the index at {folder} lives in Milvus at {uri}, which has no collection "
                    f"{', '.join(missing)}: was it dropped, or is this the wrong Milvus (SEMSEARCH_MILVUS_URI)?"
                )
            load_collections(connection, names)
        except BaseException:
            connection.close()
            raise
        return cls(folder, manifest, connection, names)

    def published(self) -> Published:
        """The committed state: this process's last commit, or the meta row read at most `REFRESH` s ago."""
        cached = self._published
        if cached is not None and time.monotonic() - cached[0] < REFRESH:
            return cached[1]
        fresh = read_published(self.connection, self.names)
        with self._lock:  # a commit of this process while the row was read is newer: keep it
            kept = self._published
            if kept is not None and _order(kept[1]) > _order(fresh):
                fresh = kept[1]
            self._published = (time.monotonic(), fresh)
            return fresh

    def committed(self, published: Published) -> None:
        """A writer of this process committed `published`: readers opened from now on see it."""
        with self._lock:
            self._published = (time.monotonic(), published)

    @contextmanager
    def read(self) -> Iterator[MilvusReader]:
        """A snapshot of the index (the published row, taken once) for the duration of the block."""
        from .reader import MilvusReader

        yield MilvusReader(self.connection, self.names, self.published(), self.manifest)

    def writer(self, *, wait: float = 0.0) -> MilvusWriter:
        """The index's single writer, as a context manager (`wait`: seconds to wait for another one)."""
        from .writer import MilvusWriter

        return MilvusWriter(self, wait=wait)

    def stats(self) -> IndexStats:
        """Counts of the published state, the model, and the size of the folder's files (a Lite file included)."""
        p = self.published()
        counts = CatalogCounts(p.documents, p.chunks, p.tokens, p.generation, p.last_ingest)
        size = sum(_size(path) for path in self.folder.rglob("*"))
        return IndexStats(self.folder, counts, self.manifest, size, [])

    def maintain(self, *, wait: float = 300.0) -> list[MergeResult]:
        """Milvus merges its segments itself; what `serve` does here is delete the rows of documents retired
        longer ago than the grace period (a writer's opening does it), so the published row stays short."""
        from .writer import RETIRED_GRACE

        if any(at <= time.time() - RETIRED_GRACE for at in self.published().retired_at):
            with self.writer(wait=wait):
                pass
        return []

    def optimize(self, *, wait: float = 300.0) -> MergeResult | None:
        """Ask Milvus to compact the collections (deleted rows go); no segment merge result to report."""
        for name in (self.names.chunks, self.names.documents, self.names.staged):
            self.connection.call("compact", name, timeout=max(wait, self.connection.timeout))
        return None

    def ledger(self) -> BatchLedger:
        raise IndexStoreError(NO_BATCH)

    def close(self) -> None:
        """Close the connection (for Milvus Lite, also let go of its file so another process may open it)."""
        self.connection.close()

    def drop(self) -> None:
        """Drop the index's collections (the folder is the caller's to delete)."""
        drop_collections(self.connection, self.names)


def resolve_uri(folder: Path, uri: str, *, relative_to_folder: bool) -> str:
    """The URI to connect to: a server URL as given; a Lite path made absolute (a manifest's is relative to the
    folder, a given one to the working directory); `<folder>/milvus.db` when there is none."""
    if not uri:
        return str((folder / LITE_FILE).absolute())
    if is_remote(uri):
        return uri
    path = Path(uri).expanduser()
    if not path.is_absolute():
        path = (folder / path) if relative_to_folder else path.absolute()
    return str(path.absolute())


def stored_uri(folder: Path, uri: str) -> str:
    """What the manifest keeps: a Lite file inside the folder relative to it (the folder may move), else as is."""
    if is_remote(uri):
        return uri
    try:
        return str(Path(uri).relative_to(folder.absolute()))
    except ValueError:
        return uri


def _order(published: Published) -> tuple[int, float]:
    """Which of two states is newer: the generation, then (a tidy keeps it) the time of the commit."""
    return published.generation, published.published_at


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0
