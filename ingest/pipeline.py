"""The ingest pipeline: walk -> load -> chunk -> embed (batched) -> stage -> publish.

Documents stream through; chunks wait only until a batch is full. Unchanged files
(same size and mtime, or same content hash) are not read again. Nothing a reader
can see changes until the run publishes, in one transaction, at its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from indexes import Index, IndexWriter, Manifest

from .embeddings import Embedder
from .errors import IngestConfigError
from .records import ChunkingConfig, FoundFile, LoadedDocument, SkippedFile
from .run import IngestRun, IngestSummary
from .walk import walk

Progress = Callable[[int, int], None]  # (items done, items total)


@dataclass(frozen=True)
class WalkOptions:
    """Which files a folder walk takes."""

    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    max_bytes: int = 50 * 2**20


def chunking_of(index: Index) -> ChunkingConfig:
    """The chunking an index was built with (its manifest's)."""
    return ChunkingConfig(**index.manifest.chunking)


def default_chunking(embedder: Embedder) -> ChunkingConfig:
    """256-token passages for the local model, 512 for remote models with longer inputs."""
    size = min(embedder.max_tokens, 512)
    return ChunkingConfig(size, size // 8)


def open_index(folder: Path, embedder: Embedder, chunking: ChunkingConfig | None) -> tuple[Index, ChunkingConfig]:
    """Open the index at `folder` for `embedder`, creating it if needed; returns its chunking."""
    index, chunking = find_index(folder, embedder, chunking)
    if index is not None:
        return index, chunking
    manifest = Manifest(
        embedding_model=embedder.name,
        dimension=embedder.dimension,
        chunking={"max_tokens": chunking.max_tokens, "overlap_tokens": chunking.overlap_tokens},
        embedder=embedder.describe(),
    )
    return Index.create(folder, manifest), chunking


def find_index(folder: Path, embedder: Embedder, chunking: ChunkingConfig | None) -> tuple[Index | None, ChunkingConfig]:
    """The index at `folder` checked against `embedder` and `chunking` (None if there is none yet)."""
    if not Index.exists(folder):
        return None, chunking or default_chunking(embedder)
    index = Index.open(folder)
    index.manifest.check_model(embedder.name, embedder.dimension)
    stored = chunking_of(index)
    if chunking is not None and chunking != stored:
        raise IngestConfigError(
            f"the index at {folder} was chunked with {stored.max_tokens} tokens and "
            f"{stored.overlap_tokens} overlap; ingest with the same settings or into a new index"
        )
    return index, stored


def ingest_paths(
    index: Index | None,
    embedder: Embedder,
    paths: Sequence[Path],
    chunking: ChunkingConfig,
    options: WalkOptions = WalkOptions(),
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> IngestSummary:
    """Bring the index in line with the files under `paths` (add, replace, remove)."""
    began = time.perf_counter()
    summary = IngestSummary()
    found: list[FoundFile] = []
    for item in walk(paths, include=options.include, exclude=options.exclude, max_bytes=options.max_bytes):
        if isinstance(item, SkippedFile):
            summary.skipped.append(item)
        else:
            found.append(item)
    summary.seen = len(found) + len(summary.skipped)
    with _writer(index) as writer:
        run = IngestRun(writer, embedder, chunking, summary, batch_size, dry_run=dry_run)
        try:
            for done, item in enumerate(found, 1):
                run.offer_file(item)
                if progress:
                    progress(done, len(found))
            run.flush()
            seen = {str(f.path) for f in found} | {s.path for s in summary.skipped}
            run.finish([p for p in run.known if p not in seen and _under(p, paths)])
        finally:
            _close(summary, embedder, began)
    return summary


def ingest_documents(
    index: Index,
    embedder: Embedder,
    documents: Iterable[LoadedDocument],
    chunking: ChunkingConfig,
    *,
    batch_size: int = 64,
    total: int = 0,
    progress: Progress | None = None,
    remove_missing: bool = False,
) -> IngestSummary:
    """Ingest documents that do not come from files (a test collection, an upload)."""
    began = time.perf_counter()
    summary = IngestSummary()
    seen: set[str] = set()
    with IndexWriter(index) as writer:
        run = IngestRun(writer, embedder, chunking, summary, batch_size)
        try:
            for done, document in enumerate(documents, 1):
                summary.seen += 1
                seen.add(document.path)
                run.offer_document(document)
                if progress:
                    progress(done, total)
            run.flush()
            run.finish([p for p in run.known if p not in seen] if remove_missing else [])
        finally:
            _close(summary, embedder, began)
    return summary


@contextmanager
def _writer(index: Index | None) -> Iterator[IndexWriter | None]:
    with IndexWriter(index) if index is not None else nullcontext() as writer:
        yield writer


def _close(summary: IngestSummary, embedder: Embedder, began: float) -> None:
    summary.elapsed = time.perf_counter() - began
    summary.upstream = embedder.usage()


def _under(path: str, roots: Sequence[Path]) -> bool:
    candidate = Path(path)
    for root in roots:
        resolved = root.resolve()
        if candidate == resolved or resolved in candidate.parents:
            return True
    return False
