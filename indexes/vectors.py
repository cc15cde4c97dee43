"""FAISS, and only here: building, saving, loading and searching one segment's vectors.

A segment is an ID map (our chunk ids) over a flat index (exact) or, from `ANN_MIN_VECTORS`
vectors on, an inverted-file index (IVF: approximate, a few lists scanned per query). Vectors
are kept as float32, float16 or 8-bit scalar-quantized (`STORAGES`); similarity is inner product.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import IndexCorrupt, IndexStoreError

if TYPE_CHECKING:  # FAISS loads on the first use of vectors, not when the CLI starts
    import faiss

KINDS = ("flat", "ivf")
STORAGES = ("f32", "f16", "sq8")
DEFAULT_STORAGE = "f32"
ANN_MIN_VECTORS = 50_000  # below this a flat scan is ~5 ms or less: exact, and nothing to train
NPROBE_SHARE = 24  # an IVF search scans 1/24 of the lists (at least MIN_NPROBE): recall@10 >= 0.97
MIN_NPROBE = 16
_TRAIN_PER_LIST = 64  # k-means sample: 64 vectors per list is what FAISS asks for


def build(ids: np.ndarray, matrix: np.ndarray, storage: str = DEFAULT_STORAGE, kind: str | None = None) -> faiss.Index:
    """A segment holding `matrix` under `ids`: flat when small, IVF when large (or as `kind` says)."""
    import faiss

    if storage not in STORAGES:
        raise IndexStoreError(f"unknown vector storage {storage!r}; use one of {', '.join(STORAGES)}")
    kind = kind or ("ivf" if len(ids) >= ANN_MIN_VECTORS else "flat")
    dimension = matrix.shape[1]
    if kind == "ivf":
        inner = _ivf(matrix, storage)
    elif storage == "f32":
        inner = faiss.IndexFlatIP(dimension)
    else:
        inner = faiss.IndexScalarQuantizer(dimension, _quantizer(storage), faiss.METRIC_INNER_PRODUCT)
        _call(inner.train, matrix)
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        _call(index.add_with_ids, matrix, np.ascontiguousarray(ids, dtype=np.int64))
    if kind == "ivf":
        faiss.extract_index_ivf(index).make_direct_map()  # so vectors can be read back by id
    return index


def _ivf(matrix: np.ndarray, storage: str) -> faiss.Index:
    import faiss

    count, dimension = matrix.shape
    lists = max(1, min(count, int(4 * math.sqrt(count))))
    coarse = faiss.IndexFlatIP(dimension)
    ivf: faiss.IndexIVF
    if storage == "f32":
        ivf = faiss.IndexIVFFlat(coarse, dimension, lists, faiss.METRIC_INNER_PRODUCT)
    else:
        ivf = faiss.IndexIVFScalarQuantizer(coarse, dimension, lists, _quantizer(storage), faiss.METRIC_INNER_PRODUCT)
    ivf.cp.niter = 10  # k-means iterations: 25 by default, 10 loses no recall measurable here
    sample = matrix
    if count > lists * _TRAIN_PER_LIST:
        rows = np.random.default_rng(0).choice(count, lists * _TRAIN_PER_LIST, replace=False)
        sample = matrix[np.sort(rows)]
    _call(ivf.train, np.ascontiguousarray(sample))
    return ivf  # FAISS's Python layer keeps `coarse` alive as long as `ivf`


def _quantizer(storage: str) -> int:
    import faiss

    return {"f16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}[storage]


def kind_of(index: faiss.Index) -> str:
    """ "flat" or "ivf"."""
    import faiss

    return "ivf" if faiss.try_extract_index_ivf(index) is not None else "flat"


def ids_of(index: faiss.Index) -> np.ndarray:
    """The chunk ids a segment holds (int64, in insertion order)."""
    import faiss

    mapped: Any = index  # an IndexIDMap2 (FAISS's stubs type it as the base Index)
    return faiss.vector_to_array(mapped.id_map).astype(np.int64)


def search(
    index: faiss.Index, query: np.ndarray, k: int, selector: faiss.IDSelector | None = None, *, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k nearest vectors to one query, among those the selector lets through.

    An IVF segment scans `NPROBE_SHARE`'s share of its lists, or all of them when `exact` (with a
    selector too: a filter must not cost matches that sit in lists the probe would skip).
    """
    import faiss

    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    matrix = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    ivf = faiss.try_extract_index_ivf(index)
    params: faiss.SearchParameters
    if ivf is not None:
        params = faiss.SearchParametersIVF()
        exhaustive = exact or selector is not None
        params.nprobe = ivf.nlist if exhaustive else min(ivf.nlist, max(MIN_NPROBE, ivf.nlist // NPROBE_SHARE))
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    scores, ids = _call(index.search, matrix, k, params=params)
    return scores[0], ids[0]


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
    if kind_of(index) == "flat":
        inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
        matrix = _call(inner.reconstruct_n, 0, inner.ntotal) if inner.ntotal else np.zeros((0, index.d), "f4")
        return ids, np.ascontiguousarray(matrix, dtype=np.float32)
    return ids, reconstruct(index, ids.tolist())


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
