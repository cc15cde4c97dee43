"""`semsearch bench-scale`: the whole service at N synthetic passages, figures printed, nothing asserted.

It builds a deterministic corpus (`synthetic.py`), ingests it through `ingest()` with the fake
embedder `hash/bow-384` (so the pipeline, not a model, is measured), then starts `semsearch serve`
on it and times searches over HTTP from another process (`bench_http.py`), and adds one document
to the big index while the server runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexes import LocalIndex
from indexes.merge import live_segments, merge_now
from ingest import Block, ChunkingConfig, Documents, LoadedDocument, ingest, open_index
from ingest.hash_embedder import HashEmbedder
from search.errors import ConfigError, DatasetError

from . import bench_http, synthetic
from .bench_http import ServeProcess

MODES = ("dense", "lexical", "hybrid")
CONNECTIONS = (1, 8)
# One chunk per passage: passages are 60-120 words, and a cut prefers a page break past a quarter of the size.
CHUNKING = ChunkingConfig(max_tokens=160, overlap_tokens=16)
_WARM_UP = 10  # requests sent before each timed run, not counted


@dataclass(frozen=True)
class ScaleOptions:
    """What `bench-scale` builds and how hard it pushes."""

    chunks: int = 100_000
    index_dir: Path | None = None  # kept there (and reusable) if given, else a temporary folder
    reuse: bool = False
    sample_from: Path | None = None  # a BEIR folder whose word frequencies the passages follow
    queries: int = 200
    recall_queries: int = 100
    vector_storage: str = "f32"  # f32, f16 or sq8, for a new index


Say = Callable[[str], None]


def run_bench_scale(options: ScaleOptions, say: Say = lambda _: None) -> dict[str, Any]:
    """Build (or reuse) the index, serve it, measure; returns the report `bench-scale` prints."""
    report: dict[str, Any] = {"chunks_requested": options.chunks, "load_average_before": _load()}
    say("writing the synthetic corpus")
    began = time.perf_counter()
    vocabulary = _vocabulary(options.sample_from)
    texts = synthetic.passages(vocabulary, options.chunks)
    report["corpus"] = {
        "source": options.sample_from.name if options.sample_from else "zipf",
        "seconds": round(time.perf_counter() - began, 2),
    }
    with _folder(options.index_dir) as folder, tempfile.TemporaryDirectory(prefix="semsearch-bench-") as work:
        embedder = HashEmbedder()
        index, built = _index(folder, options, texts, embedder, say)
        try:
            report["ingest"] = built
            if not built["reused"]:
                say("merging segments as the policy asks (what serve would do in its background)")
                report["merge_after_ingest"] = _merge(index)
            report["index"] = _disk(index)
            queries = synthetic.queries(texts, options.queries)
            say("serving and searching over HTTP")
            with ServeProcess(folder, Path(work) / "serve.log") as server:
                report["serve"] = {"cold_start_seconds": round(server.first_answer(queries[0]), 3)}
                report["http"] = _http(server, queries)
                report["recall_at_10"] = bench_http.recall_at_10(server, queries[: options.recall_queries])
                report["serve"].update(server.rss())
                say("adding one document")
                report["add_one_document"] = _add_one(index, embedder, server, vocabulary)
        finally:
            index.close()
    report["load_average_after"] = _load()
    return report


def _vocabulary(sample_from: Path | None) -> synthetic.Vocabulary:
    if sample_from is None:
        return synthetic.Vocabulary.zipf()
    try:
        return synthetic.Vocabulary.sampled_from(sample_from)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot sample words from {sample_from}: {exc}") from exc


@contextmanager
def _folder(index_dir: Path | None) -> Iterator[Path]:
    if index_dir is not None:
        yield index_dir
        return
    work = Path(tempfile.mkdtemp(prefix="semsearch-bench-scale-"))
    try:
        yield work / "index"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _index(
    folder: Path, options: ScaleOptions, texts: list[str], embedder: HashEmbedder, say: Say
) -> tuple[LocalIndex, dict[str, Any]]:
    """The index of `texts`: reused if asked and it holds them, else ingested now (timed)."""
    if LocalIndex.exists(folder):
        if not options.reuse:
            raise ConfigError(f"{folder} already holds an index; pass --reuse to measure it again, or another --index")
        index = LocalIndex.open(folder)
        index.manifest.check_model(embedder.name, embedder.dimension)
        chunks = index.stats().counts.chunks
        if chunks != len(texts):
            index.close()
            raise ConfigError(f"{folder} holds {chunks} chunks, not {len(texts)}; use another --index")
        return index, {"reused": True}
    opened, _ = open_index(folder, embedder, CHUNKING, options.vector_storage)
    assert isinstance(opened, LocalIndex)  # this benchmark measures the local store's segments
    index = opened
    prefix = f"synthetic-{options.sample_from.name if options.sample_from else 'zipf'}"
    say(f"ingesting {len(texts)} passages")
    cpu, began = time.process_time(), time.perf_counter()
    summary = ingest(index, embedder, Documents(synthetic.documents(texts, prefix)), chunking=CHUNKING)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    return index, {
        "reused": False,
        "documents": summary.ingested,
        "chunks": summary.chunks,
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "chunks_per_second": round(summary.chunks / wall, 1),
        "embed_seconds": round(summary.embed_seconds, 2),
    }


def _merge(index: LocalIndex) -> dict[str, Any]:
    """The merges the tiered policy asks for after the big publish (a large flat segment becomes HNSW), timed.

    Done here, before the server starts, so the searches measure the index as it settles,
    not a merge running in the server's background.
    """
    cpu, began = time.process_time(), time.perf_counter()
    results = merge_now(index)
    return {
        "seconds": round(time.perf_counter() - began, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "merges": [f"{r.segments} -> {r.kind} of {r.vectors}" for r in results],
        "writers_paused_seconds": round(max((r.locked_seconds for r in results), default=0.0), 3),
    }


def _disk(index: LocalIndex) -> dict[str, Any]:
    """Chunks, vector segments, and bytes on disk in all (every file under the index folder) and per chunk."""
    chunks = index.stats().counts.chunks
    files = {str(p.relative_to(index.folder)): p.stat().st_size for p in index.folder.rglob("*") if p.is_file()}
    size = sum(files.values())
    largest = dict(sorted(files.items(), key=lambda item: -item[1])[:3])
    live = live_segments(index)
    named = {f"segments/{s.file}" for s in live}
    # Segment files a merge replaced wait out their grace period (for readers in other processes), then go.
    retired = sum(n for name, n in files.items() if name.startswith("segments/seg-") and name not in named)
    return {
        "chunks": chunks,
        "segments": [f"{s.kind} {s.storage} {s.vectors - s.tombstones}" for s in live],
        "disk_bytes": size,
        "bytes_per_chunk": round(size / max(chunks, 1)),
        "retired_bytes": retired,
        "bytes_per_chunk_settled": round((size - retired) / max(chunks, 1)),
        "largest": largest,
    }


def _http(server: ServeProcess, queries: list[str]) -> dict[str, Any]:
    """p50/p95 and throughput per mode and for the floor route, at 1 and 8 connections."""
    out: dict[str, Any] = {"load": bench_http.LOAD, "floor_route": bench_http.FLOOR_ROUTE}
    for connections in CONNECTIONS:
        runs: dict[str, Any] = {}
        for name in ("floor", *MODES):
            bodies = [None] * len(queries) if name == "floor" else [{"query": q, "mode": name} for q in queries]
            bench_http.load(server, bodies[:_WARM_UP], connections)
            runs[name] = bench_http.load(server, bodies, connections)
        out[f"{connections}_connections"] = runs
    return out


def _add_one(
    index: LocalIndex, embedder: HashEmbedder, server: ServeProcess, vocabulary: synthetic.Vocabulary
) -> dict[str, Any]:
    """Ingest one new document of 4 passages into the big index while it is served; then take it out."""
    marker = f"benchscale{time.time_ns()}"  # new on every run, so the ingest has something to publish
    texts = [f"{marker} {text}" for text in synthetic.passages(vocabulary, 4, seed=time.time_ns())]
    blocks = tuple(Block(text, page=page) for page, text in enumerate(texts, 1))
    document = LoadedDocument(f"bench-scale-added/{marker}.txt", "text", marker, blocks, pages=len(texts))
    began = time.perf_counter()
    summary = ingest(index, embedder, Documents([document]), chunking=CHUNKING)
    added = time.perf_counter() - began
    seen = bench_http.visible(server, marker)
    began = time.perf_counter()
    with index.writer() as writer:
        writer.remove([document.path])
    return {
        "seconds": round(added, 3),
        "chunks": summary.chunks,
        "visible_to_server": seen,
        "remove_seconds": round(time.perf_counter() - began, 3),
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
