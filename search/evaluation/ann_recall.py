"""Recall and latency of semsearch's approximate (HNSW) segments on clustered vectors, against an exact scan.

Not run in CI: `python -m search.evaluation.ann_recall --vectors 1000000 --storage f16`. The vectors are
clustered, as sentence embeddings are (a few thousand topic centres, each passage near one; queries near
a passage), unlike the hashed bag-of-words vectors of `bench-scale`, which no graph index searches well.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from indexes import vectors


def clustered(count: int, dimension: int, seed: int, centres: int = 4000) -> np.ndarray:
    """`count` unit vectors, each near one of `centres` random unit centres."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dimension)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    out = np.empty((count, dimension), dtype=np.float32)
    for start in range(0, count, 100_000):
        part = middle[rng.integers(0, centres, min(100_000, count - start))]
        # noise of norm ~0.75: two passages of a topic at cosine ~0.64, as related passages are
        part = part + (0.75 / np.sqrt(dimension)) * rng.standard_normal(part.shape).astype(np.float32)
        out[start : start + len(part)] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


def measure(count: int, storage: str, queries: int = 200, dimension: int = 384) -> dict[str, object]:
    import faiss

    data = clustered(count, dimension, seed=0)
    rng = np.random.default_rng(1)
    noise = (0.5 / np.sqrt(dimension)) * rng.standard_normal((queries, dimension)).astype(np.float32)
    asked = data[rng.integers(0, count, queries)] + noise  # a query near a passage, not on it
    asked /= np.linalg.norm(asked, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(dimension)
    exact.add(data)
    _, truth = exact.search(asked, 10)
    del exact
    began = time.perf_counter()
    segment = vectors.build(np.arange(count, dtype=np.int64), data, storage, kind="hnsw")
    built = time.perf_counter() - began
    report: dict[str, object] = {"vectors": count, "storage": storage, "build_seconds": round(built, 1)}
    for k in (10, 300):  # k=10: efSearch 64; k=300, what a semsearch query asks: efSearch 300
        times, recalls = [], []
        for row, query in enumerate(asked):
            start = time.perf_counter()
            _, ids = vectors.search(segment, query, k)
            times.append(time.perf_counter() - start)
            recalls.append(len(set(ids[:10].tolist()) & set(truth[row].tolist())) / 10)
        report[f"k{k}"] = {
            "p50_ms": round(statistics.median(times) * 1000, 3),
            "p95_ms": round(sorted(times)[int(0.95 * len(times))] * 1000, 3),
            "recall_at_10": round(float(np.mean(recalls)), 4),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--storage", choices=vectors.STORAGES, default="f32")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(measure(args.vectors, args.storage, args.queries), indent=2))


if __name__ == "__main__":
    main()
