"""Vector segments: immutable FAISS files that a catalog generation names, searched together.

A publish writes only its new vectors, as one new segment; a deleted chunk becomes a
tombstone, which searches skip (a FAISS id selector) until a merge (`indexes/merge.py`)
rewrites its segment without it. The catalog's `segments` table is the list: a file
that no row names is a killed writer's and goes; a retired segment's file stays for a
grace period, so a reader in another process that took its snapshot just before a
merge can still load it.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import vectors
from .catalog import Catalog

if TYPE_CHECKING:
    import faiss

SEGMENTS_DIR = "segments"
RETIRED_GRACE = 120.0  # seconds a merged-away segment's file outlives its retirement
LEGACY_SEGMENT = 0  # the in-memory segment of an index written before segments existed


@dataclass(frozen=True)
class SegmentInfo:
    """One live segment: its catalog row and how many of its vectors are tombstones."""

    id: int
    file: str
    kind: str
    storage: str
    vectors: int
    tombstones: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "storage": self.storage,
            "vectors": self.vectors,
            "tombstones": self.tombstones,
        }


def live(catalog: Catalog) -> list[SegmentInfo]:
    """The segments of the catalog's current snapshot, oldest first."""
    dead = dict(catalog.rows("SELECT segment, count(*) FROM tombstones GROUP BY segment"))  # one scan
    rows = catalog.rows("SELECT id, file, kind, storage, vectors FROM segments WHERE retired_at IS NULL ORDER BY id")
    return [SegmentInfo(id, file, kind, storage, count, dead.get(id, 0)) for id, file, kind, storage, count in rows]


def dead_ids(catalog: Catalog) -> np.ndarray:
    """The tombstoned chunk ids of the snapshot (int64)."""
    return np.fromiter((r[0] for r in catalog.rows("SELECT chunk_id FROM tombstones")), dtype=np.int64)


def has_legacy_vectors(catalog: Catalog) -> bool:
    """Whether vectors of an index from before segments still wait in the catalog."""
    return catalog.row("SELECT 1 FROM legacy_vectors LIMIT 1") is not None


LEGACY_ROWS = "SELECT id, vector FROM legacy_vectors ORDER BY id"


def stored_vectors(
    catalog: Catalog, sql: str, dimension: int, params: Sequence[object] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The (chunk id, float32 blob) rows of a query, as an id array and a matrix."""
    ids: list[int] = []
    blobs: list[bytes] = []
    for rows in catalog.stream(sql, params):
        ids.extend(r[0] for r in rows)
        blobs.extend(r[1] for r in rows)
    return np.asarray(ids, dtype=np.int64), vectors.as_matrix(blobs, dimension)


def legacy_segment(catalog: Catalog, dimension: int) -> faiss.Index:
    """A flat segment, in memory, of the vectors an older semsearch kept in the catalog."""
    return vectors.build(*stored_vectors(catalog, LEGACY_ROWS, dimension), kind="flat")


class SegmentSet:
    """The vectors of one snapshot: its live segments (loaded when first needed) less its tombstones."""

    def __init__(self, infos: Sequence[SegmentInfo], dead: np.ndarray, load: Callable[[SegmentInfo], faiss.Index]):
        self.infos = list(infos)
        self._load = load
        self._exclude = vectors.exclusion_selector(dead) if len(dead) else None

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, *, exact: bool = False
    ) -> list[tuple[int, float]]:
        """The k nearest live chunks to a query vector, (chunk id, inner product), best first."""
        if k <= 0 or not self.infos or (allowed is not None and len(allowed) == 0):
            return []
        # A filter's ids come from the snapshot's catalog, so they hold no tombstone.
        selector = vectors.batch_selector(allowed) if allowed is not None else self._exclude_selector()
        scores, ids = zip(*(vectors.search(self._load(info), query, k, selector, exact=exact) for info in self.infos))
        score, chunk = np.concatenate(scores), np.concatenate(ids)
        keep = chunk >= 0
        score, chunk = score[keep], chunk[keep]
        best = np.lexsort((chunk, -score))[:k]  # by score, then by id
        return list(zip(chunk[best].tolist(), score[best].tolist()))

    def load(self, info: SegmentInfo) -> faiss.Index:
        """One segment's FAISS index."""
        return self._load(info)

    def _exclude_selector(self) -> faiss.IDSelector | None:
        return self._exclude[0] if self._exclude is not None else None

    def vectors(self, located: Sequence[tuple[int, int | None]]) -> dict[int, np.ndarray]:
        """The stored vector of each (chunk id, segment id) pair whose segment is live."""
        by_segment: dict[int, list[int]] = {}
        for chunk_id, segment in located:
            by_segment.setdefault(segment if segment is not None else LEGACY_SEGMENT, []).append(chunk_id)
        found: dict[int, np.ndarray] = {}
        for info in self.infos:
            ids = by_segment.get(info.id)
            if ids:
                found.update(zip(ids, vectors.reconstruct(self._load(info), ids)))
        return found


class SegmentCache:
    """Loaded segments shared by an `Index`'s readers (segments never change, so none goes stale)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / SEGMENTS_DIR
        self._loaded: dict[int, faiss.Index] = {}
        self._lock = threading.Lock()

    def load(self, info: SegmentInfo) -> faiss.Index:
        index = self._loaded.get(info.id)
        if index is None:
            with self._lock:
                index = self._loaded.get(info.id)
                if index is None:
                    index = vectors.load(self.folder / info.file)
                    self._loaded[info.id] = index
        return index

    def keep(self, infos: Sequence[SegmentInfo], extra: dict[int, faiss.Index] | None = None) -> None:
        """Forget segments no longer live (a reader of an old snapshot reloads one if it must)."""
        wanted = {info.id for info in infos}
        with self._lock:
            self._loaded = {i: index for i, index in self._loaded.items() if i in wanted}
            self._loaded.update(extra or {})


@dataclass(frozen=True)
class Prepared:
    """A segment written to a temporary file, waiting for `commit` under the write lock."""

    tmp: Path
    name: str
    kind: str
    storage: str
    vectors: int


def prepare(folder: Path, ids: np.ndarray, matrix: np.ndarray, storage: str, kind: str | None = None) -> Prepared:
    """Build a segment of these vectors and write it to a temporary file (no lock needed)."""
    index = vectors.build(ids, matrix, storage, kind)
    directory = folder / SEGMENTS_DIR
    directory.mkdir(exist_ok=True)
    name = f"seg-{os.getpid()}-{secrets.token_hex(6)}.faiss"
    tmp = directory / f".{name}.tmp"
    vectors.write_file(index, tmp)
    return Prepared(tmp, name, vectors.kind_of(index), storage, len(ids))


def commit(folder: Path, catalog: Catalog, prepared: Prepared) -> int:
    """Give a prepared segment its name and its row (inside the caller's write transaction, under the lock)."""
    os.replace(prepared.tmp, folder / SEGMENTS_DIR / prepared.name)
    sql = "INSERT INTO segments (file, kind, storage, vectors, created_at) VALUES (?, ?, ?, ?, ?)"
    catalog.run(sql, (prepared.name, prepared.kind, prepared.storage, prepared.vectors, time.time()))
    return int(catalog.value("SELECT last_insert_rowid()"))


def write(folder: Path, catalog: Catalog, ids: np.ndarray, matrix: np.ndarray, storage: str) -> int | None:
    """Write a new flat segment of these vectors and record it (in the caller's write transaction); its id.

    Flat, whatever its size: a publish costs the write of its vectors only. A large one becomes
    HNSW at the next merge (`indexes/merge.py`), in the background of `serve` or by `optimize`.
    """
    if not len(ids):
        return None
    return commit(folder, catalog, prepare(folder, ids, matrix, storage, kind="flat"))


def tidy(folder: Path, catalog: Catalog, *, now: float | None = None) -> list[Path]:
    """Delete what no generation needs (the caller holds the write lock); returns what went.

    That is: retired segments past their grace period, segment files no row names (a killed
    writer's), temporary files of dead processes, and the single vector file of older semsearch.
    """
    now = time.time() if now is None else now
    directory = folder / SEGMENTS_DIR
    removed = []
    for segment_id, name in catalog.rows("SELECT id, file FROM segments WHERE retired_at < ?", (now - RETIRED_GRACE,)):
        removed += _unlink(directory / name)
        catalog.run("DELETE FROM segments WHERE id = ?", (segment_id,))
    named = {row[0] for row in catalog.rows("SELECT file FROM segments")}
    for path in directory.glob("seg-*.faiss") if directory.exists() else ():
        if path.name not in named:
            removed += _unlink(path)
    removed += remove_dead_temporaries(folder)
    if not has_legacy_vectors(catalog):
        for path in folder.glob("vectors-*.faiss"):
            removed += _unlink(path)
    for path in folder.glob(".vectors-*.faiss.*.tmp"):
        removed += _unlink(path)
    return removed


def remove_dead_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary segment files of processes that are gone (safe without the write lock)."""
    directory = folder / SEGMENTS_DIR
    removed = []
    for path in directory.glob(".seg-*.faiss.tmp") if directory.exists() else ():
        if not _alive(_pid_of(path.name)):
            removed += _unlink(path)
    return removed


def _pid_of(name: str) -> int:
    try:
        return int(name.split("-")[1])
    except (IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _unlink(path: Path) -> list[Path]:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return []  # a reader without write access: the next writer cleans up
    return [path]
