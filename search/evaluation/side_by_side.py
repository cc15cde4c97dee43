"""Side by side, not run in CI: bare FAISS (flat, HNSW32), Chroma, txtai and semsearch's dense search.

All in this process, k=10, one query at a time, on the same vectors: N synthetic passages
(`synthetic.py`) embedded by the fake `hash/bow-384`. Prints the build (add) time, p50/p95 per
query and recall@10 against exact search, with the load average seen. Queries are interleaved
(each query runs on every contender in turn), so a change in the machine's load hits all alike.

    python -m search.evaluation.side_by_side --chunks 100000

Chroma and txtai are not semsearch dependencies; install them beside it in a scratch venv:
`python3 -m venv /tmp/peers && /tmp/peers/bin/pip install chromadb txtai -e .`, then run the
module with /tmp/peers/bin/python. A peer that does not import is listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexes import LocalIndex
from indexes.merge import live_segments, merge_now
from ingest import Documents, ingest, open_index
from ingest.hash_embedder import HashEmbedder
from search.retrieve import search

from . import synthetic
from .beir import percentiles
from .bench_scale import CHUNKING

K = 10
Search = Callable[[np.ndarray, str], list[int]]  # (query vector, query text) -> passage numbers, best first


@dataclass(frozen=True)
class Contender:
    """One store, built: how to search it, how long its build took, and what it is."""

    name: str
    search: Search
    build_seconds: float
    note: str = ""


def _faiss_flat(vectors: np.ndarray, texts: list[str], work: Path, stack: ExitStack) -> list[Contender]:
    began = time.perf_counter()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    built = time.perf_counter() - began
    return [Contender("faiss flat", lambda q, _: list(flat.search(q[None, :], K)[1][0]), built, "exact")]


def _faiss_hnsw(vectors: np.ndarray, texts: list[str], work: Path, stack: ExitStack) -> list[Contender]:
    began = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(vectors)
    built = time.perf_counter() - began

    def searcher(ef: int) -> Search:
        params = faiss.SearchParametersHNSW(efSearch=ef)  # type: ignore[attr-defined]  # missing from the stubs
        return lambda q, _: list(hnsw.search(q[None, :], K, params=params)[1][0])

    return [Contender(f"faiss HNSW32 ef{ef}", searcher(ef), built, "efConstruction 40") for ef in (16, 128)]


def _chroma(vectors: np.ndarray, texts: list[str], work: Path, stack: ExitStack) -> list[Contender]:
    import chromadb  # not a semsearch dependency

    began = time.perf_counter()
    client = chromadb.PersistentClient(path=str(work / "chroma"))
    collection = client.create_collection("bench")  # l2: the same order as cosine on unit vectors
    step = client.get_max_batch_size()
    for start in range(0, len(texts), step):
        stop = start + step
        ids = [str(i) for i in range(start, min(stop, len(texts)))]
        collection.add(ids=ids, embeddings=vectors[start:stop], documents=texts[start:stop])
    built = time.perf_counter() - began

    def run(query: np.ndarray, _: str) -> list[int]:
        found = collection.query(query_embeddings=[query], n_results=K, include=["distances"])
        return [int(i) for i in found["ids"][0]]

    return [Contender(f"chroma {metadata.version('chromadb')}", run, built, "HNSW defaults, text stored")]


def _txtai(vectors: np.ndarray, texts: list[str], work: Path, stack: ExitStack) -> list[Contender]:
    from txtai import Embeddings  # not a semsearch dependency

    embedder = HashEmbedder()

    def transform(texts: list[str]) -> np.ndarray:  # txtai takes a plain function, not a bound method
        return embedder.embed_documents(texts)

    embeddings = Embeddings(method="external", transform=transform, backend="faiss")
    began = time.perf_counter()
    embeddings.index((i, text, None) for i, text in enumerate(texts))
    built = time.perf_counter() - began
    backend = ((embeddings.config or {}).get("build") or {}).get("settings") or {}

    def run(_: np.ndarray, query: str) -> list[int]:
        return [int(i) for i, _ in embeddings.search(query, K)]

    note = (
        f"its FAISS defaults {json.dumps(backend)}; query embedded by txtai" if backend else "query embedded by txtai"
    )
    return [Contender(f"txtai {metadata.version('txtai')}", run, built, note)]


def _semsearch(vectors: np.ndarray, texts: list[str], work: Path, stack: ExitStack) -> list[Contender]:
    embedder = HashEmbedder()
    index, _ = open_index(work / "semsearch", embedder, CHUNKING)
    stack.callback(index.close)
    assert isinstance(index, LocalIndex)  # the comparison measures the local store's segments
    began = time.perf_counter()
    ingest(index, embedder, Documents(synthetic.documents(texts, "passages", titled=False)), chunking=CHUNKING)
    merges = merge_now(index)  # as serve would in its background: a large flat segment becomes HNSW
    built = time.perf_counter() - began
    kinds = ", ".join(f"{s.kind} {s.vectors}" for s in live_segments(index))
    number = {text: i for i, text in enumerate(texts)}
    with index.read() as reader:
        passage = {chunk.chunk_id: number[chunk.text] for chunk in reader.all_chunks()}

    def dense(query: np.ndarray, _: str) -> list[int]:
        with index.read() as reader:  # a snapshot per query, as a request gets
            return [passage[chunk_id] for chunk_id, _ in reader.dense(query, K)]

    def full(_: np.ndarray, query: str) -> list[int]:
        return [passage[hit.chunk_id] for hit in search(index, embedder, query, K, "dense")]

    ingest_note = f"build = ingest() (SQLite, full text, vectors) + {len(merges)} merges; segments: {kinds}"
    return [
        Contender("semsearch reader.dense", dense, built, ingest_note),
        Contender("semsearch search(dense)", full, built, "query embedded, passages fetched, snippets"),
    ]


BUILDERS: dict[str, Callable[[np.ndarray, list[str], Path, ExitStack], list[Contender]]] = {
    "faiss-flat": _faiss_flat,
    "faiss-hnsw": _faiss_hnsw,
    "chroma": _chroma,
    "txtai": _txtai,
    "semsearch": _semsearch,
}


def run_side_by_side(chunks: int, queries: int, peers: list[str]) -> dict[str, Any]:
    """Build every contender on the same vectors and time the same queries on each, interleaved."""
    report: dict[str, Any] = {"chunks": chunks, "k": K, "queries": queries, "load_average_before": os.getloadavg()}
    texts = synthetic.passages(synthetic.Vocabulary.zipf(), chunks)
    embedder = HashEmbedder()
    vectors = np.vstack([embedder.embed_documents(texts[i : i + 4096]) for i in range(0, len(texts), 4096)])
    asked = synthetic.queries(texts, queries)
    query_vectors = embedder.embed_documents(asked)
    truth = faiss.IndexFlatIP(vectors.shape[1])
    truth.add(vectors)
    exact = truth.search(query_vectors, K)[1]
    contenders, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="semsearch-side-by-side-") as work, ExitStack() as stack:
        for name in peers:
            try:
                (Path(work) / name).mkdir()
                contenders += BUILDERS[name](vectors, texts, Path(work) / name, stack)
            except ImportError as exc:
                skipped[name] = f"not installed ({exc})"
        report["results"] = _time(contenders, query_vectors, asked, exact)
    report["skipped"] = skipped
    report["load_average_after"] = os.getloadavg()
    return report


def _time(
    contenders: list[Contender], vectors: np.ndarray, texts: list[str], exact: np.ndarray
) -> list[dict[str, Any]]:
    latencies: list[list[float]] = [[] for _ in contenders]
    recalls: list[list[float]] = [[] for _ in contenders]
    for number, (vector, text) in enumerate(zip(vectors, texts)):
        for turn in range(len(contenders)):
            which = (number + turn) % len(contenders)  # each contender goes first as often as the others
            began = time.perf_counter()
            found = contenders[which].search(vector, text)
            latencies[which].append((time.perf_counter() - began) * 1000)
            recalls[which].append(len(set(found) & set(exact[number].tolist())) / K)
    rows = []
    for contender, times, recall in zip(contenders, latencies, recalls):
        p50, p95 = percentiles(times)
        rows.append(
            {
                "name": contender.name,
                "build_seconds": round(contender.build_seconds, 2),
                "p50_ms": round(p50, 3),
                "p95_ms": round(p95, 3),
                "recall_at_10": round(float(np.mean(recall)), 4),
                "note": contender.note,
            }
        )
    return rows


def format_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table, ready for the README."""
    before, after = (" ".join(f"{x:.2f}" for x in report[key]) for key in ("load_average_before", "load_average_after"))
    lines = [
        f"{report['chunks']:,} passages, k={report['k']}, {report['queries']} queries one at a time, in process "
        f"(load average {before} before, {after} after)",
        "",
        "| contender | build s | p50 ms | p95 ms | recall@10 | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['name']} | {row['build_seconds']:.1f} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} "
            f"| {row['recall_at_10']:.3f} | {row['note']} |"
        )
    lines += [f"skipped {name}: {why}" for name, why in report["skipped"].items()]
    return "\n".join(lines)


def main() -> None:
    """`python -m search.evaluation.side_by_side --chunks 100000 [--queries 200] [--peers a,b] [--json]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peers", default=",".join(BUILDERS), help=f"comma-separated, of {', '.join(BUILDERS)}")
    parser.add_argument("--threads", type=int, default=1, help="FAISS (OpenMP) threads; 1 is fastest for one query")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    report = run_side_by_side(args.chunks, args.queries, [p for p in args.peers.split(",") if p])
    report["faiss_threads"] = args.threads
    print(json.dumps(report, indent=2) if args.json else format_table(report))


if __name__ == "__main__":
    main()
