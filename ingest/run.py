"""One ingest run: decide what changed, chunk it, embed it in batches, stage it.

Passages whose exact embedding input is already stored (published or staged) reuse
that vector. When the embedder fails part-way through a batch, the documents whose
passages all came back are staged before the error goes up, so the next run
resumes after them. A dry run does everything but embed and write.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes import ChunkRecord, DocumentRecord, IndexWriter, KnownDocument, StagedDocument

from .chunking import chunk_document, embedding_input
from .embeddings import Embedder
from .errors import UnreadableDocument, UpstreamError
from .loaders import load, read_file
from .records import Chunk, ChunkingConfig, FoundFile, LoadedDocument, SkippedFile
from .walk import path_key


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
    embedded_tokens: int = 0
    elapsed: float = 0.0
    embed_seconds: float = 0.0
    dry_run: bool = False
    upstream: dict[str, float | int] = field(default_factory=dict)  # requests, retries, 429s, TPM

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "files_seen": self.seen,
            "ingested": self.ingested,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks": self.chunks,
            "tokens": self.tokens,
            "embedded": self.embedded,
            "embedded_tokens": self.embedded_tokens,
            "elapsed_seconds": round(self.elapsed, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 2),
            "dry_run": self.dry_run,
        }
        if self.upstream:
            out["upstream"] = self.upstream
        return out


class IngestRun:
    """State of one ingest: what is known, what waits for embedding."""

    def __init__(
        self,
        writer: IndexWriter | None,
        embedder: Embedder,
        chunking: ChunkingConfig,
        summary: IngestSummary,
        batch_size: int,
        *,
        dry_run: bool = False,
    ) -> None:
        self.writer, self.embedder, self.chunking = writer, embedder, chunking
        self.dry_run = dry_run or writer is None
        summary.dry_run = self.dry_run
        self.summary, self.batch_size = summary, batch_size
        self.known: dict[str, KnownDocument] = writer.known_documents() if writer else {}
        self.staged: dict[str, StagedDocument] = writer.staged_documents() if writer else {}
        self.keep_staged: set[str] = set()
        self.pending: list[tuple[DocumentRecord, list[Chunk]]] = []
        self.pending_chunks = 0

    def offer_file(self, item: FoundFile, attributes: dict[str, Any] | None = None) -> None:
        """Take a file found by the walk: skip it if unchanged, else load and queue it.

        Attributes come from the caller (an upload) or from a sidecar `NAME.meta.json`;
        the sidecar is part of the document's content hash, so editing it re-ingests.
        """
        key = path_key(item.path)
        known = self.known.get(key)
        sidecar = sidecar_path(item.path)
        mtime = max(item.mtime, sidecar.stat().st_mtime) if attributes is None and sidecar.is_file() else item.mtime
        if known and known.size == item.size and known.mtime == mtime and attributes is None:
            self.summary.unchanged += 1
            return
        try:
            if attributes is None:
                attributes = read_sidecar(sidecar)
            data = read_file(item.path)  # read once: hashed here, parsed below
            digest = hash_bytes(data, json.dumps(attributes, sort_keys=True) if attributes else "")
            if known and known.content_hash == digest:
                if self.writer and not self.dry_run:
                    self.writer.touch(key, mtime)  # the time compared above, sidecar included
                self.summary.unchanged += 1
                return
            if self._already_staged(key, digest):
                return
            document = load(item.path, data)
        except UnreadableDocument as exc:
            self.summary.skipped.append(SkippedFile(key, exc.reason))
            return
        except OSError as exc:
            self.summary.skipped.append(SkippedFile(key, exc.strerror or str(exc)))
            return
        record = DocumentRecord(
            path=key,
            content_hash=digest,
            type=document.type,
            title=document.title,
            size=item.size,
            mtime=mtime,
            pages=document.pages,
            attributes={**document.attributes, **(attributes or {})},
        )
        self._add(record, document)

    def offer_document(self, document: LoadedDocument) -> None:
        """Take a document that does not come from a file (its path is its key)."""
        digest = hash_text(document.title + "\x00" + "\x00".join(b.text for b in document.blocks))
        known = self.known.get(document.path)
        if known and known.content_hash == digest:
            self.summary.unchanged += 1
            return
        if self._already_staged(document.path, digest):
            return
        record = DocumentRecord(
            path=document.path, content_hash=digest, type=document.type, title=document.title, pages=document.pages
        )
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
        if self.dry_run:  # counts what it would embed, embeds nothing
            self.summary.ingested += 1
            self.summary.chunks += len(chunks)
            self.summary.tokens += sum(c.tokens for c in chunks)
            self.summary.embedded += len(chunks)
            self.summary.embedded_tokens += sum(self.embedder.count_tokens(self._inputs(record, chunks)))
            return
        self.pending.append((record, chunks))
        self.pending_chunks += len(chunks)
        if self.pending_chunks >= self.batch_size:
            self.flush()

    def _inputs(self, record: DocumentRecord, chunks: list[Chunk]) -> list[str]:
        return [embedding_input(record.title, c.heading, c.text) for c in chunks]

    def flush(self) -> None:
        """Embed every pending chunk (reusing stored vectors) and stage their documents."""
        if not self.pending:
            return
        inputs = [self._inputs(record, chunks) for record, chunks in self.pending]
        hashes = [[hash_text(text) for text in group] for group in inputs]
        try:
            vectors = self._vectors([t for g in inputs for t in g], [h for g in hashes for h in g])
        except UpstreamError as exc:
            self._stage_complete(hashes, exc.partial)  # type: ignore[arg-type]
            raise
        self._stage_complete(hashes, vectors)

    def _stage_complete(self, hashes: list[list[str]], vectors: dict[str, bytes]) -> None:
        """Stage every pending document whose passages all have a vector."""
        assert self.writer is not None
        for (record, chunks), group in zip(self.pending, hashes):
            if not all(h in vectors for h in group):
                continue
            self.writer.stage(record, [ChunkRecord(c, h, vectors[h]) for c, h in zip(chunks, group)])
            self.keep_staged.add(record.path)
            self.summary.ingested += 1
            self.summary.chunks += len(chunks)
            self.summary.tokens += sum(c.tokens for c in chunks)
        self.pending, self.pending_chunks = [], 0

    def _vectors(self, texts: list[str], hashes: list[str]) -> dict[str, bytes]:
        assert self.writer is not None
        found = self.writer.stored_vectors(sorted(set(hashes)))
        missing = {h: t for t, h in zip(texts, hashes) if h not in found}
        if not missing:
            return found
        began = time.perf_counter()
        try:
            matrix = self.embedder.embed_documents(list(missing.values()))
        except UpstreamError as exc:
            keys = list(missing)
            found.update({keys[i]: np.asarray(v, dtype="<f4").tobytes() for i, v in exc.partial.items()})
            exc.partial = found  # type: ignore[assignment]
            raise
        finally:
            self.summary.embed_seconds += time.perf_counter() - began
        self.summary.embedded += len(missing)
        self.summary.embedded_tokens += sum(self.embedder.count_tokens(list(missing.values())))
        for digest, row in zip(missing, np.asarray(matrix, dtype="<f4")):
            found[digest] = row.tobytes()
        return found

    def finish(self, removed: list[str]) -> None:
        """Drop stale staged work, then publish everything at once."""
        if self.dry_run or self.writer is None:
            self.summary.removed = len(removed)
            return
        self.writer.unstage(p for p in self.staged if p not in self.keep_staged)
        self.summary.removed = len(removed)
        if self.keep_staged or removed:
            self.writer.publish(removed)
        else:
            self.writer.ensure_vectors_file()


def hash_bytes(data: bytes, extra: str = "") -> str:
    """sha256 of a file's bytes (and of `extra`, such as its attributes)."""
    digest = hashlib.sha256(data)
    if extra:
        digest.update(b"\x00" + extra.encode("utf-8"))
    return digest.hexdigest()


def sidecar_path(path: Path) -> Path:
    """Where a file's attributes may be kept: `report.pdf` -> `report.pdf.meta.json`."""
    return path.with_name(path.name + ".meta.json")


def read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's attributes (a JSON object of scalars), or {} when there is none."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnreadableDocument(str(path), f"unreadable attributes sidecar: {exc}") from exc
    if not isinstance(value, dict):
        raise UnreadableDocument(str(path), "the attributes sidecar must hold a JSON object")
    return value


def hash_text(text: str) -> str:
    """sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
