"""The ingest pipeline: walk -> load -> chunk -> embed (batched) -> stage -> publish.

Documents stream through; chunks wait only until a batch is full. Unchanged files
(same size and mtime, or same content hash) are not read again; passages whose
exact embedding input is already stored reuse that vector instead of re-embedding.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexes import ChunkRecord, DocumentRecord, Index, IndexWriter, KnownDocument, Manifest, StagedDocument

from .chunking import chunk_document, embedding_input
from .embeddings import Embedder
from .errors import IngestConfigError, UnreadableDocument
from .loaders import load
from .records import Chunk, ChunkingConfig, FoundFile, LoadedDocument, SkippedFile
from .walk import walk

Progress = Callable[[int, int], None]  # (items done, items total)


@dataclass(frozen=True)
class WalkOptions:
    """Which files a folder walk takes."""

    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    max_bytes: int = 50 * 2**20


@dataclass
class IngestSummary:
    """Counts and timings of one ingest run."""

    seen: int = 0
    ingested: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    chunks: int = 0
    tokens: int = 0
    embedded: int = 0  # chunks sent to the embedder (the rest reused stored vectors)
    elapsed: float = 0.0
    embed_seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "files_seen": self.seen, "ingested": self.ingested, "unchanged": self.unchanged,
            "removed": self.removed, "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks": self.chunks, "tokens": self.tokens, "embedded": self.embedded,
            "elapsed_seconds": round(self.elapsed, 3), "embed_seconds": round(self.embed_seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 2),
        }


def open_index(folder: Path, embedder: Embedder, chunking: ChunkingConfig | None) -> tuple[Index, ChunkingConfig]:
    """Open the index at `folder` for `embedder`, creating it if needed; returns its chunking."""
    if Index.exists(folder):
        index = Index.open(folder)
        index.manifest.check_model(embedder.name, embedder.dimension)
        stored = ChunkingConfig(**index.manifest.chunking)
        if chunking is not None and chunking != stored:
            raise IngestConfigError(
                f"the index at {folder} was chunked with {stored.max_tokens} tokens and "
                f"{stored.overlap_tokens} overlap; ingest with the same settings or into a new index"
            )
        return index, stored
    chunking = chunking or ChunkingConfig()
    manifest = Manifest(
        embedding_model=embedder.name,
        dimension=embedder.dimension,
        chunking={"max_tokens": chunking.max_tokens, "overlap_tokens": chunking.overlap_tokens},
    )
    return Index.create(folder, manifest), chunking


def ingest_paths(
    index: Index,
    embedder: Embedder,
    paths: Sequence[Path],
    chunking: ChunkingConfig,
    options: WalkOptions = WalkOptions(),
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
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
    with IndexWriter(index) as writer:
        run = _Run(writer, embedder, chunking, summary, batch_size)
        for done, item in enumerate(found, 1):
            run.offer_file(item)
            if progress:
                progress(done, len(found))
        run.flush()
        seen = {str(f.path) for f in found} | {s.path for s in summary.skipped}
        removed = [p for p in run.known if p not in seen and _under(p, paths)]
        run.finish(removed)
    summary.elapsed = time.perf_counter() - began
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
        run = _Run(writer, embedder, chunking, summary, batch_size)
        for done, document in enumerate(documents, 1):
            summary.seen += 1
            seen.add(document.path)
            run.offer_document(document, _hash_text(document))
            if progress:
                progress(done, total)
        run.flush()
        run.finish([p for p in run.known if p not in seen] if remove_missing else [])
    summary.elapsed = time.perf_counter() - began
    return summary


class _Run:
    """State of one ingest: what is known, what waits for embedding."""

    def __init__(self, writer: IndexWriter, embedder: Embedder, chunking: ChunkingConfig, summary: IngestSummary, batch_size: int) -> None:
        self.writer, self.embedder, self.chunking = writer, embedder, chunking
        self.summary, self.batch_size = summary, batch_size
        self.known: dict[str, KnownDocument] = writer.known_documents()
        self.staged: dict[str, StagedDocument] = writer.staged_documents()
        self.keep_staged: set[str] = set()
        self.pending: list[tuple[DocumentRecord, list[Chunk]]] = []
        self.pending_chunks = 0

    def offer_file(self, item: FoundFile) -> None:
        key = str(item.path)
        known = self.known.get(key)
        if known and known.size == item.size and known.mtime == item.mtime:
            self.summary.unchanged += 1
            return
        try:
            digest = _hash_file(item.path)
            if known and known.content_hash == digest:
                self.writer.touch(key, item.mtime)
                self.summary.unchanged += 1
                return
            if self._already_staged(key, digest):
                return
            document = load(item.path)
        except UnreadableDocument as exc:
            self.summary.skipped.append(SkippedFile(key, exc.reason))
            return
        except OSError as exc:
            self.summary.skipped.append(SkippedFile(key, exc.strerror or str(exc)))
            return
        record = DocumentRecord(
            path=key, content_hash=digest, type=document.type, title=document.title,
            size=item.size, mtime=item.mtime, pages=document.pages,
        )
        self._add(record, document)

    def offer_document(self, document: LoadedDocument, digest: str) -> None:
        known = self.known.get(document.path)
        if known and known.content_hash == digest:
            self.summary.unchanged += 1
            return
        if self._already_staged(document.path, digest):
            return
        record = DocumentRecord(path=document.path, content_hash=digest, type=document.type, title=document.title, pages=document.pages)
        self._add(record, document)

    def _already_staged(self, key: str, digest: str) -> bool:
        """A document staged by an interrupted earlier run is taken as it is."""
        staged = self.staged.get(key)
        if staged is None or staged.content_hash != digest:
            return False
        self.keep_staged.add(key)
        self.summary.ingested += 1
        self.summary.chunks += staged.chunks
        self.summary.tokens += staged.tokens
        return True

    def _add(self, record: DocumentRecord, document: LoadedDocument) -> None:
        chunks = chunk_document(document, self.embedder, self.chunking)
        if not chunks:
            self.summary.skipped.append(SkippedFile(record.path, "no text to index"))
            return
        self.pending.append((record, chunks))
        self.pending_chunks += len(chunks)
        if self.pending_chunks >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Embed every pending chunk (reusing stored vectors) and stage their documents."""
        if not self.pending:
            return
        inputs = [
            [embedding_input(record.title, c.heading, c.text) for c in chunks]
            for record, chunks in self.pending
        ]
        hashes = [[_hash_str(text) for text in group] for group in inputs]
        vectors = self._vectors([t for g in inputs for t in g], [h for g in hashes for h in g])
        for (record, chunks), group in zip(self.pending, hashes):
            rows = [_chunk_record(c, h, vectors[h]) for c, h in zip(chunks, group)]
            self.writer.stage(record, rows)
            self.keep_staged.add(record.path)
            self.summary.ingested += 1
            self.summary.chunks += len(rows)
            self.summary.tokens += sum(c.tokens for c in chunks)
        self.pending, self.pending_chunks = [], 0

    def _vectors(self, texts: list[str], hashes: list[str]) -> dict[str, bytes]:
        found = self.writer.stored_vectors(sorted(set(hashes)))
        missing = {h: t for t, h in zip(texts, hashes) if h not in found}
        if missing:
            began = time.perf_counter()
            matrix = self.embedder.embed_documents(list(missing.values()))
            self.summary.embed_seconds += time.perf_counter() - began
            self.summary.embedded += len(missing)
            for digest, row in zip(missing, np.asarray(matrix, dtype="<f4")):
                found[digest] = row.tobytes()
        return found

    def finish(self, removed: list[str]) -> None:
        self.writer.unstage(p for p in self.staged if p not in self.keep_staged)
        self.summary.removed = len(removed)
        if self.keep_staged or removed:
            self.writer.publish(removed)
        else:
            self.writer.ensure_vectors_file()


def _chunk_record(chunk: Chunk, text_hash: str, vector: bytes) -> ChunkRecord:
    return ChunkRecord(
        ordinal=chunk.ordinal, text=chunk.text, text_hash=text_hash, vector=vector,
        tokens=chunk.tokens, heading=chunk.heading, page=chunk.page, page_end=chunk.page_end,
        char_start=chunk.char_start, char_end=chunk.char_end,
    )


def _under(path: str, roots: Sequence[Path]) -> bool:
    candidate = Path(path)
    for root in roots:
        resolved = root.resolve()
        if candidate == resolved or resolved in candidate.parents:
            return True
    return False


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _hash_str(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _hash_text(document: LoadedDocument) -> str:
    return _hash_str(document.title + "\x00" + "\x00".join(b.text for b in document.blocks))
