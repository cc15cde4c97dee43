"""`semsearch bench`: ingest throughput against the bare model, and query latency.

Figures, not assertions: it ingests the first documents of a BEIR-layout collection
into a fresh index, embeds the very same passages again with the model alone, and
times the collection's queries in process and over HTTP (a real uvicorn server on
127.0.0.1).
"""

from __future__ import annotations

import functools
import itertools
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from indexes import Index
from ingest import Documents, Embedder, embedding_input, ingest, make_embedder, open_index
from search.retrieve import search
from search.settings import Settings

from .beir import load_beir, percentiles
from .run import beir_documents


def run_benchmark(
    dataset_dir: Path, settings: Settings, *, documents: int, queries: int, modes: Sequence[str], http: bool
) -> dict[str, Any]:
    """Measure ingest and model throughput, and search latency per mode."""
    dataset = load_beir(dataset_dir)
    embedder = make_embedder(settings.embedding_model, cache_dir=settings.cache_dir)
    texts = list(dataset.queries.values())[:queries]
    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as tmp:
        folder = Path(tmp) / "index"
        index, _ = open_index(folder, embedder, None)
        summary = ingest(index, embedder, Documents(itertools.islice(beir_documents(dataset), documents)))
        report: dict[str, Any] = {
            "dataset": dataset.name,
            "documents": summary.ingested,
            "chunks": summary.chunks,
            "tokens": summary.tokens,
            "ingest_seconds": round(summary.elapsed, 2),
            "ingest_chunks_per_second": round(summary.chunks_per_second, 2),
        }
        report.update(_model_alone(index, embedder))
        report["pipeline_overhead"] = round(
            report["model_chunks_per_second"] / max(summary.chunks_per_second, 1e-9) - 1, 4
        )
        for mode in modes:
            report[f"search_{mode}_ms"] = _latency(functools.partial(_search, index, embedder, mode), texts)
        if http:
            report.update(_http_latency(folder, settings, texts, modes))
        report["queries"] = len(texts)
        index.close()
        embedder.close()
    return report


def _search(index: Index, embedder: Embedder, mode: str, query: str) -> object:
    return search(index, embedder, query, 10, mode)


def _model_alone(index: Index, embedder: Embedder) -> dict[str, float]:
    """The same passages as the ingest embedded, embedded again by the bare model."""
    with index.read() as reader:
        inputs = [embedding_input(r.title, r.heading, r.text) for r in reader.all_chunks()]
    began = time.perf_counter()
    for start in range(0, len(inputs), 64):
        embedder.embed_documents(inputs[start : start + 64])
    seconds = time.perf_counter() - began
    return {"model_seconds": round(seconds, 2), "model_chunks_per_second": round(len(inputs) / seconds, 2)}


def _latency(run: Callable[[str], object], texts: Sequence[str]) -> dict[str, float]:
    run(texts[0])  # warm up: first FAISS load, caches
    times = []
    for text in texts:
        began = time.perf_counter()
        run(text)
        times.append((time.perf_counter() - began) * 1000)
    p50, p95 = percentiles(times)
    return {"p50": round(p50, 2), "p95": round(p95, 2)}


def _http_latency(folder: Path, settings: Settings, texts: Sequence[str], modes: Sequence[str]) -> dict[str, Any]:
    from search.http.app import create_app
    from search.http.server import ServerThread

    app = create_app(Settings(index_dir=folder, cache_dir=settings.cache_dir, embedding_model=settings.embedding_model))
    out: dict[str, Any] = {}
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        for mode in modes:

            def post(q: str, mode: str = mode) -> None:
                client.post("/search", json={"query": q, "k": 10, "mode": mode}).raise_for_status()

            out[f"http_{mode}_ms"] = _latency(post, texts)
    return out
