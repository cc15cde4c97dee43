"""`semsearch eval`: ingest a BEIR-layout collection, run its queries, report the metrics."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from indexes import store_exists
from ingest import Block, Documents, LoadedDocument, ingest, make_embedder, open_index
from search.fusion import DEFAULT_FUSION
from search.retrieve import rank_documents
from search.settings import Settings

from .beir import BeirDataset, CorpusRecord, load_beir, run_beir

ProgressBar = Callable[[str], AbstractContextManager[Callable[[int, int], None] | None]]


@contextmanager
def no_progress(label: str) -> Iterator[None]:
    """No progress shown (what a caller without a terminal passes)."""
    yield None


def run_evaluation(
    dataset_dir: Path,
    settings: Settings,
    index_dir: Path | None,
    mode: str,
    split: str = "test",
    *,
    fusion: str = DEFAULT_FUSION,
    progress_bar: ProgressBar = no_progress,
) -> dict[str, Any]:
    """Evaluate retrieval on the collection in `dataset_dir`; returns the metrics as a dict.

    `progress_bar(label)` gives a callback for each stage (the CLI draws a bar; the default nothing).
    """
    dataset = load_beir(dataset_dir, split)
    folder = index_dir or _default_index(dataset_dir, settings)
    embedder = make_embedder(settings.embedding_model, cache_dir=settings.cache_dir)
    store = settings.store if not store_exists(folder) else None  # an existing index keeps its store
    index, _ = open_index(folder, embedder, None, store=store, milvus=settings.milvus())
    with progress_bar("Ingesting corpus") as progress:
        corpus = Documents(beir_documents(dataset), total=dataset.corpus_size() if progress else 0, remove_missing=True)
        summary = ingest(index, embedder, corpus, progress=progress)
    with progress_bar("Running queries") as progress:
        report = run_beir(
            dataset, lambda query: rank_documents(index, embedder, query, mode, 100, fusion), progress=progress
        )
    index.close()
    embedder.close()
    return {
        **report.to_json(),
        "mode": mode,
        "fusion": fusion,
        "dataset": dataset.name,
        "index": str(folder),
        "documents_ingested": summary.ingested,
        "documents_unchanged": summary.unchanged,
        "ingest_seconds": round(summary.elapsed, 2),
        "ingest_chunks_per_second": round(summary.chunks_per_second, 2),
    }


def _default_index(dataset_dir: Path, settings: Settings) -> Path:
    """A cache folder per dataset and embedding model, so a second run reuses the index."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{dataset_dir.resolve().name}-{settings.embedding_model}")
    return settings.cache_dir / "eval" / slug


def beir_documents(dataset: BeirDataset) -> Iterator[LoadedDocument]:
    """The collection's records as documents whose path is their id (what the qrels name)."""
    for record in dataset.iter_corpus():
        yield _as_document(record)


def _as_document(record: CorpusRecord) -> LoadedDocument:
    text = record.text.strip() or record.title.strip()
    blocks = (Block(text),) if text else ()
    return LoadedDocument(path=record.doc_id, type="text", title=record.title.strip(), blocks=blocks)
