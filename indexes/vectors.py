"""FAISS, and only here: building, saving, loading and searching one segment's vectors.

A segment is an ID map (our chunk ids) over a flat index (exact) or, from `ANN_MIN_VECTORS`
vectors on, an HNSW graph (approximate: a walk over a few hundred neighbours per query).
Vectors are kept as float32, float16 or 8-bit scalar-quantized (`STORAGES`); similarity is
inner product. Measured on SciFact's MiniLM vectors (10k passages, 300 queries), recall@10
against an exact scan: HNSW32 efSearch 64 0.988, while IVF needed 16% of its lists scanned
for 0.97 (sentence-embedding queries sit off the passages' clusters), so HNSW it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import IndexCorrupt, IndexStoreError

if TYPE_CHECKING:  # FAISS loads on the first use of vectors, not when the CLI starts
    import faiss

STORAGES = ("f32", "f16", "sq8")
DEFAULT_STORAGE = "f32"
ANN_MIN_VECTORS = 50_000  # below this a flat scan is ~5 ms or less: exact, and quick to build
HNSW_NEIGHBOURS = 32  # M: links per vector
HNSW_BUILD_DEPTH = 64  # efConstruction
HNSW_SEARCH_DEPTH = 64  # efSearch (at least k): recall@10 0.988 on SciFact's MiniLM vectors


def build(ids: np.ndarray, matrix: np.ndarray, storage: str = DEFAULT_STORAGE, kind: str | None = None) -> faiss.Index:
    """A segment holding `matrix` under `ids`: flat when small, HNSW when large (or as `kind` says)."""
    import faiss

    if storage not in STORAGES:
        raise IndexStoreError(f"unknown vector storage {storage!r}; use one of {', '.join(STORAGES)}")
    kind = kind or ("hnsw" if len(ids) >= ANN_MIN_VECTORS else "flat")
    dimension = matrix.shape[1]
    inner: faiss.Index
    if kind == "hnsw":
        if storage == "f32":
            inner = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        else:
            inner = faiss.IndexHNSWSQ(dimension, _quantizer(storage), HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_BUILD_DEPTH
    elif storage == "f32":
        inner = faiss.IndexFlatIP(dimension)
    else:
        inner = faiss.IndexScalarQuantizer(dimension, _quantizer(storage), faiss.METRIC_INNER_PRODUCT)
    if not inner.is_trained:
        _call(inner.train, matrix)
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        _call(index.add_with_ids, matrix, np.ascontiguousarray(ids, dtype=np.int64))
    return index


def _quantizer(storage: str) -> Any:
    import faiss

    return {"f16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}[storage]


def _graph(index: faiss.Index) -> Any:
    """The HNSW index inside a segment's ID map, or None for a flat segment."""
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    return inner if isinstance(inner, faiss.IndexHNSW) else None


def kind_of(index: faiss.Index) -> str:
    """ "flat" or "hnsw"."""
    return "hnsw" if _graph(index) is not None else "flat"


def ids_of(index: faiss.Index) -> np.ndarray:
    """The chunk ids a segment holds (int64, in insertion order)."""
    import faiss

    mapped: Any = index  # an IndexIDMap2 (FAISS's stubs type it as the base Index)
    return faiss.vector_to_array(mapped.id_map).astype(np.int64)


def search(
    index: faiss.Index, query: np.ndarray, k: int, selector: faiss.IDSelector | None = None, *, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k nearest vectors to one query, among those the selector lets through.

    An HNSW segment walks its graph; asked to be `exact`, or given a filter's selector (a walk
    may miss matches a filter leaves sparse), it scans its stored vectors instead.
    """
    import faiss

    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    matrix = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    # One query runs faster on one thread (1.3-1.7x measured; OpenMP's other thread spins on a
    # busy machine); the setting is per calling thread, so merges still build on every core.
    faiss.omp_set_num_threads(1)
    graph = _graph(index)
    params: Any  # FAISS's type stubs lack SearchParametersHNSW
    if graph is not None and (exact or (selector is not None and not isinstance(selector, faiss.IDSelectorNot))):
        return _scan(index, graph, matrix, k, selector)
    if graph is not None:
        params = getattr(faiss, "SearchParametersHNSW")()  # noqa: B009 - absent from the type stubs
        params.efSearch = max(HNSW_SEARCH_DEPTH, k)
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    scores, ids = _call(index.search, matrix, k, params=params)
    return scores[0], ids[0]


def _scan(index: Any, graph: Any, matrix: np.ndarray, k: int, selector: Any) -> tuple[np.ndarray, np.ndarray]:
    """An exact search of an HNSW segment: its stored vectors, scanned as a flat index would be."""
    import faiss

    storage = faiss.downcast_index(graph.storage)
    params = faiss.SearchParameters()
    if selector is not None:
        translated = faiss.IDSelectorTranslated(index.id_map, selector)
        params.sel = translated
    scores, internal = _call(storage.search, matrix, k, params=params)
    id_map = faiss.rev_swig_ptr(index.id_map.data(), index.id_map.size())
    found = internal[0]
    return scores[0], np.where(found >= 0, id_map[np.maximum(found, 0)], -1)


def reconstruct(index: faiss.Index, ids: Sequence[int]) -> np.ndarray:
    """The stored vectors of these ids (each must be in the segment), as float32 rows."""
    out = np.empty((len(ids), index.d), dtype=np.float32)
    for row, chunk_id in enumerate(ids):
        out[row] = _call(index.reconstruct, int(chunk_id))
    return out


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """Every (id, vector) of a segment: what a merge copies."""
    import faiss

    ids = ids_of(index)
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    matrix = _call(inner.reconstruct_n, 0, inner.ntotal) if inner.ntotal else np.zeros((0, index.d), "f4")
    return ids, np.ascontiguousarray(matrix, dtype=np.float32)


def as_matrix(blobs: Sequence[bytes], dimension: int) -> np.ndarray:
    """Stack float32 vector blobs into an (n, dimension) array."""
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimension)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def load(path: Path) -> faiss.Index:
    """Read a FAISS file, raising `IndexCorrupt` if it cannot be read."""
    import faiss

    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexCorrupt(
            f"cannot read the vector segment {path}: {exc}; move the index folder aside and ingest again"
        ) from exc


def write_file(index: faiss.Index, path: Path) -> None:
    """Write a FAISS file and fsync it (deleted again if that fails)."""
    import faiss

    try:
        faiss.write_index(index, str(path))
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    except (RuntimeError, OSError) as exc:
        path.unlink(missing_ok=True)
        raise IndexStoreError(f"cannot write the vector segment {path}: {exc}") from exc


def new_index(dimension: int) -> faiss.Index:
    """An empty flat ID-mapped index (for tests and tools)."""
    return build(np.zeros(0, dtype=np.int64), np.zeros((0, dimension), dtype=np.float32), kind="flat")


def add(index: faiss.Index, ids: Sequence[int], matrix: np.ndarray) -> None:
    """Add vectors under the given ids to a flat index."""
    if len(ids):
        _call(index.add_with_ids, matrix, np.asarray(ids, dtype=np.int64))


def batch_selector(allowed: np.ndarray) -> faiss.IDSelector:
    """A selector letting through only these ids."""
    import faiss

    return faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))


def exclusion_selector(dead: np.ndarray) -> tuple[faiss.IDSelector, Any]:
    """A selector letting through every id but these; returns it with the buffers it reads (keep them alive)."""
    import faiss

    bitmap = np.zeros(int(dead.max()) // 8 + 1, dtype=np.uint8)
    np.bitwise_or.at(bitmap, dead >> 3, (1 << (dead & 7)).astype(np.uint8))
    inner = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))  # n counts bytes
    return faiss.IDSelectorNot(inner), (bitmap, inner)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except RuntimeError as exc:
        raise IndexStoreError(f"FAISS failed: {exc}") from exc
