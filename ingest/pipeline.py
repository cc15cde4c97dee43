"""The ingest pipeline: walk -> load -> chunk -> embed (batched) -> stage -> publish.

Documents stream through; chunks wait only until a batch is full. Unchanged files
(same size and mtime, or same content hash) are not read again. Nothing a reader
can see changes until the run publishes, in one transaction, at its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from indexes import Index, IndexWriter, LocalIndex, Manifest, MilvusOptions, create_store, open_store, store_exists
from indexes.manifest import FORMAT_VERSION

from .embeddings import Embedder
from .errors import IngestConfigError
from .records import ChunkingConfig, FoundFile, LoadedDocument, SkippedFile
from .run import Collect, IngestRun
from .summary import IngestSummary
from .walk import path_key, walk

Progress = Callable[[int, int], None]  # (items done, items total)

MAX_CHUNK_TOKENS = 512  # the default passage size, when the model takes that many tokens
LOCAL_BATCH_SIZE = 64  # passages per embedding batch for the model in process...
REMOTE_BATCH_SIZE = 1024  # ...and for a remote endpoint (the embedder cuts requests to the server's limits)
MAX_FILE_BYTES = 50 * 2**20  # larger files are skipped with a reason


@dataclass(frozen=True)
class WalkOptions:
    """Which files a folder walk takes."""

    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    max_bytes: int = MAX_FILE_BYTES


def chunking_of(index: Index) -> ChunkingConfig:
    """The chunking an index was built with (its manifest's)."""
    return ChunkingConfig(**index.manifest.chunking)


def default_chunking(
    embedder: Embedder, max_tokens: int | None = None, overlap_tokens: int | None = None
) -> ChunkingConfig:
    """256-token passages for the local model, 512 for remote models with longer inputs; overlap 1/8 of that."""
    size = max_tokens or min(embedder.max_tokens, MAX_CHUNK_TOKENS)
    return ChunkingConfig(size, size // 8 if overlap_tokens is None else overlap_tokens)


def default_batch_size(embedder: Embedder) -> int:
    """Passages per embedding batch: small for the model in process, large for a remote endpoint."""
    return LOCAL_BATCH_SIZE if embedder.name.startswith("local/") else REMOTE_BATCH_SIZE


def open_index(
    folder: Path,
    embedder: Embedder,
    chunking: ChunkingConfig | None,
    vector_storage: str | None = None,
    *,
    store: str | None = None,
    milvus: MilvusOptions | None = None,
) -> tuple[Index, ChunkingConfig]:
    """Open the index at `folder` for `embedder`, creating it if needed (in `store`: local or milvus, local by
    default); returns its chunking. `milvus` says how to reach Milvus for a Milvus index.

    `vector_storage` (f32, f16, sq8) is how new local segments keep their vectors; for an existing
    index it applies from the next publish on (`semsearch optimize` rewrites the older ones).
    """
    if vector_storage is not None and store == "milvus":
        raise IngestConfigError("--vector-storage applies to the local store only: Milvus keeps its own vectors")
    index, chunking = find_index(folder, embedder, chunking, milvus=milvus)
    if index is not None:
        if store is not None and store != index.manifest.store:
            index.close()
            raise IngestConfigError(
                f"the index at {folder} is in the {index.manifest.store} store, not {store}: ingest without "
                f"--store, or copy it with `semsearch migrate --index {folder} --to {store}`"
            )
        if vector_storage is not None:
            if not isinstance(index, LocalIndex):
                index.close()
                raise IngestConfigError(
                    "--vector-storage applies to the local store only: Milvus keeps its own vectors"
                )
            index.set_vector_storage(vector_storage)
        return index, chunking
    manifest = Manifest(
        embedding_model=embedder.name,
        dimension=embedder.dimension,
        chunking={"max_tokens": chunking.max_tokens, "overlap_tokens": chunking.overlap_tokens},
        embedder=embedder.describe(),
        vector_storage=vector_storage or "f32",
    )
    if store == "milvus":
        manifest = replace(manifest, store="milvus", format_version=FORMAT_VERSION)
    return create_store(folder, manifest, milvus=milvus), chunking


def find_index(
    folder: Path, embedder: Embedder, chunking: ChunkingConfig | None, *, milvus: MilvusOptions | None = None
) -> tuple[Index | None, ChunkingConfig]:
    """The index at `folder` checked against `embedder` and `chunking` (None if there is none yet)."""
    if not store_exists(folder):
        return None, chunking or default_chunking(embedder)
    index = open_store(folder, milvus=milvus)
    index.manifest.check_model(embedder.name, embedder.dimension)
    stored = chunking_of(index)
    if chunking is not None and chunking != stored:
        raise IngestConfigError(
            f"the index at {folder} was chunked with {stored.max_tokens} tokens and "
            f"{stored.overlap_tokens} overlap; ingest with the same settings or into a new index"
        )
    return index, stored


@dataclass(frozen=True)
class Folders:
    """Files found by walking folders (and files) with `WalkOptions`; what is gone from them is removed."""

    paths: Sequence[Path]
    options: WalkOptions = WalkOptions()

    def offer(self, run: IngestRun, progress: Progress | None) -> list[str]:
        found: list[FoundFile] = []
        walked = walk(
            self.paths, include=self.options.include, exclude=self.options.exclude, max_bytes=self.options.max_bytes
        )
        for item in walked:
            if isinstance(item, SkippedFile):
                run.summary.skipped.append(item)
            else:
                found.append(item)
        run.summary.seen = len(found) + len(run.summary.skipped)
        for done, item in enumerate(found, 1):
            run.offer_file(item)
            if progress:
                progress(done, len(found))
        seen = {path_key(f.path) for f in found} | {s.path for s in run.summary.skipped}
        return [p for p in run.known if p not in seen and _under(p, self.paths)]


@dataclass(frozen=True)
class Files:
    """Files given one by one (uploads), each with its attributes; nothing else is removed."""

    files: Sequence[tuple[Path, Mapping[str, Any]]]

    def offer(self, run: IngestRun, progress: Progress | None) -> list[str]:
        for done, (path, attributes) in enumerate(self.files, 1):
            run.summary.seen += 1
            stat = path.stat()
            run.offer_file(FoundFile(path, stat.st_size, stat.st_mtime), attributes=dict(attributes))
            if progress:
                progress(done, len(self.files))
        return []


@dataclass(frozen=True)
class Documents:
    """Documents that are not files (a test collection); with `remove_missing`, the index keeps only these."""

    documents: Iterable[LoadedDocument]
    total: int = 0
    remove_missing: bool = False

    def offer(self, run: IngestRun, progress: Progress | None) -> list[str]:
        seen: set[str] = set()
        for done, document in enumerate(self.documents, 1):
            run.summary.seen += 1
            seen.add(document.path)
            run.offer_document(document)
            if progress:
                progress(done, self.total)
        return [p for p in run.known if p not in seen] if self.remove_missing else []


Source = Folders | Files | Documents


def ingest(
    index: Index | None,
    embedder: Embedder,
    source: Source,
    *,
    chunking: ChunkingConfig | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
    collect: Collect | None = None,
) -> IngestSummary:
    """Bring the index in line with `source`: add, replace (and for folders, remove) documents, then publish.

    The one ingest entry point (CLI, uploads, jobs, the watcher, evaluation). `chunking` and
    `batch_size` default to the index's chunking and the embedder's batch size. With no index
    (a dry run of a new one), nothing is written. A dry run hands `collect` what it would embed.
    """
    began = time.perf_counter()
    summary = IngestSummary()
    if chunking is None:
        chunking = chunking_of(index) if index is not None else default_chunking(embedder)
    with _writer(index) as writer:
        size = batch_size or default_batch_size(embedder)
        run = IngestRun(writer, embedder, chunking, summary, size, dry_run=dry_run, collect=collect)
        try:
            removed = source.offer(run, progress)
            run.flush()
            run.finish(removed)
        finally:
            summary.elapsed = time.perf_counter() - began
            summary.upstream = embedder.usage()
    return summary


@contextmanager
def _writer(index: Index | None) -> Iterator[IndexWriter | None]:
    with index.writer() if index is not None else nullcontext() as writer:
        yield writer


def _under(path: str, roots: Sequence[Path]) -> bool:
    candidate = Path(path)
    for root in roots:
        resolved = Path(path_key(root.resolve()))
        if candidate == resolved or resolved in candidate.parents:
            return True
    return False
