"""The FAISS side of an index: ids are catalog chunk ids, similarity is inner product."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import IndexCorrupt, IndexStoreError

if TYPE_CHECKING:  # FAISS loads on the first use of vectors, not when the CLI starts
    import faiss

VECTORS_PREFIX = "vectors-"
VECTORS_SUFFIX = ".faiss"

# An ID map over a flat inner-product index: exact search, ids we choose (the catalog's
# chunk ids), removal by id. Flat is exact and fast enough to a few hundred thousand chunks.
SUPPORTED_TYPES = ("flat",)

_TEMPORARY = re.compile(rf"\.{VECTORS_PREFIX}(\d+){re.escape(VECTORS_SUFFIX)}\.(\d+)\.tmp")  # see `save`


def new_index(dimension: int, index_type: str = "flat") -> faiss.Index:
    """An empty ID-mapped FAISS index of the given type."""
    import faiss

    if index_type not in SUPPORTED_TYPES:
        raise IndexStoreError(f"unknown FAISS index type {index_type!r}; use one of {SUPPORTED_TYPES}")
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def as_matrix(blobs: Sequence[bytes], dimension: int) -> np.ndarray:
    """Stack float32 vector blobs into an (n, dimension) array."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimension)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def add(index: faiss.Index, ids: Sequence[int], vectors: np.ndarray) -> None:
    """Add vectors under the given ids."""
    if len(ids):
        _call(index.add_with_ids, vectors, np.asarray(ids, dtype=np.int64))


def remove(index: faiss.Index, ids: Sequence[int]) -> None:
    """Remove the given ids (missing ids are ignored)."""
    if len(ids):
        _call(index.remove_ids, np.asarray(ids, dtype=np.int64))


def search(index: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The k nearest chunk ids with their inner-product scores, best first; only ids in `allowed` if given."""
    import faiss

    if index.ntotal == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
        return []
    matrix = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    # One query is faster on one thread (measured 1.3-1.7x); the setting is per calling thread.
    faiss.omp_set_num_threads(1)
    if allowed is None:
        scores, ids = _call(index.search, matrix, min(k, index.ntotal))
    else:
        # The selector skips other ids during the scan (IndexIDMap2 translates it to our ids),
        # so k matching chunks come back whenever k exist, however badly they rank overall.
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        params = faiss.SearchParameters()
        params.sel = selector
        scores, ids = _call(index.search, matrix, min(k, index.ntotal, len(allowed)), params=params)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def file_for(folder: Path, generation: int) -> Path:
    """Where the FAISS file of a catalog generation lives."""
    return folder / f"{VECTORS_PREFIX}{generation}{VECTORS_SUFFIX}"


def load(path: Path) -> faiss.Index:
    """Read a FAISS file, raising `IndexCorrupt` if it cannot be read."""
    import faiss

    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexCorrupt(f"cannot read the vector index {path}: {exc}") from exc


def save(index: faiss.Index, path: Path) -> None:
    """Write a FAISS file atomically: temp file, fsync, rename."""
    import faiss

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except RuntimeError as exc:
        tmp.unlink(missing_ok=True)
        raise IndexStoreError(f"cannot write the vector index {path}: {exc}") from exc


def remove_leftovers(folder: Path, generation: int | None = None) -> list[Path]:
    """Delete the temporary files of `save` that a killed writer left behind; returns them.

    With no `generation`, every one goes (the caller holds the write lock, so none is being
    written). Otherwise only those certainly dead: of an older generation, or by a process gone.
    """
    removed = []
    for path in folder.glob(f".{VECTORS_PREFIX}*{VECTORS_SUFFIX}.*.tmp"):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None:
            continue
        written_for, pid = int(match[1]), int(match[2])
        if generation is None or written_for < generation or not _alive(pid):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                continue  # a reader without write access: the next writer cleans up
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale(folder: Path, keep: Path) -> None:
    """Delete FAISS files of older generations (open readers keep their copy on POSIX)."""
    for stale in folder.glob(f"{VECTORS_PREFIX}*{VECTORS_SUFFIX}"):
        if stale != keep:
            stale.unlink(missing_ok=True)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except RuntimeError as exc:
        raise IndexStoreError(f"FAISS failed: {exc}") from exc
