"""One ingest run: decide what changed, chunk it, embed it in batches, stage it.

Passages whose exact embedding input is already stored (published or staged) reuse
that vector. When the embedder fails part-way through a batch, the documents whose
passages all came back are staged before the error goes up, so the next run
resumes after them. A dry run does everything but embed and write; given a `collect` callback,
it hands it the embedding input of every passage it would embed (`ingest --batch` submits those).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes import ChunkRecord, DocumentRecord, IndexWriter, KnownDocument, StagedDocument, storable

from .chunking import embedding_input, iter_chunks
from .embeddings import Embedder, batched
from .errors import UnreadableDocument, UpstreamError
from .loaders import load, read_file
from .records import Chunk, ChunkingConfig, FoundFile, LoadedDocument, SkippedFile
from .summary import IngestSummary
from .walk import path_key

# A document with this many passages or more is embedded and staged a group of this size at a time, so
# memory does not grow with its length; smaller ones are batched together as before.
_LARGE = 1024

Collect = Callable[[list[str], list[int]], None]  # (embedding inputs, their token counts)


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
        collect: Collect | None = None,
    ) -> None:
        self.writer, self.embedder, self.chunking = writer, embedder, chunking
        self.collect = collect
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
            digest, document = self._read(item.path, key, known, mtime, attributes)
        except UnreadableDocument as exc:
            self.summary.skipped.append(SkippedFile(key, exc.reason))
            return
        except OSError as exc:
            self.summary.skipped.append(SkippedFile(key, exc.strerror or str(exc)))
            return
        if document is None:
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

    def _read(
        self, path: Path, key: str, known: KnownDocument | None, mtime: float, attributes: dict[str, Any]
    ) -> tuple[str, LoadedDocument | None]:
        """The file's content hash, and its parsed document unless it is unchanged or already staged.

        The bytes are read once (hashed, then parsed) and let go before the document is chunked.
        """
        data = read_file(path)
        digest = hash_bytes(data, json.dumps(attributes, sort_keys=True) if attributes else "")
        if known and known.content_hash == digest:
            if self.writer and not self.dry_run:
                self.writer.touch(key, mtime)  # the time compared above, sidecar included
            self.summary.unchanged += 1
            return digest, None
        if self._already_staged(key, digest):
            return digest, None
        return digest, load(path, data)

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
        self.summary.resumed += 1
        self.summary.chunks += staged.chunks
        self.summary.tokens += staged.tokens
        return True

    def _add(self, record: DocumentRecord, document: LoadedDocument) -> None:
        chunks = iter_chunks(document, self.embedder, self.chunking)
        if self.dry_run:  # counts what it would embed, embeds nothing, keeps no passage
            self._count(record, chunks)
            return
        first = list(itertools.islice(chunks, _LARGE))
        if not first:
            self.summary.skipped.append(SkippedFile(record.path, "no text to index"))
        elif len(first) < _LARGE:
            self.pending.append((record, first))
            self.pending_chunks += len(first)
            if self.pending_chunks >= self.batch_size:
                self.flush()
        else:
            self.flush()  # documents offered earlier are staged first
            self._stream(record, itertools.chain(first, chunks))

    def _stream(self, record: DocumentRecord, chunks: Iterator[Chunk]) -> None:
        """A large document: embedded and staged a group of passages at a time, then staged whole.

        Until its last group is stored the document is not staged: a crash leaves passages whose
        vectors the next run reuses, never half a document.
        """
        assert self.writer is not None
        count = tokens = 0
        for group in batched(chunks, _LARGE):
            inputs = self._inputs(record, group)
            hashes = [hash_text(text) for text in inputs]
            vectors = self._vectors(inputs, hashes)
            self.writer.stage_chunks(record.path, [ChunkRecord(c, h, vectors[h]) for c, h in zip(group, hashes)])
            count += len(group)
            tokens += sum(c.tokens for c in group)
        self.writer.stage_document(record, count, tokens)
        self.keep_staged.add(record.path)
        self.summary.ingested += 1
        self.summary.chunks += count
        self.summary.tokens += tokens

    def _count(self, record: DocumentRecord, chunks: Iterator[Chunk]) -> None:
        counted = tokens = embedded_tokens = 0
        for group in batched(chunks, _LARGE):
            counted += len(group)
            tokens += sum(c.tokens for c in group)
            inputs = self._inputs(record, group)
            counts = self.embedder.count_tokens(inputs)
            embedded_tokens += sum(counts)
            if self.collect is not None:
                self.collect(inputs, counts)
        if not counted:
            self.summary.skipped.append(SkippedFile(record.path, "no text to index"))
            return
        self.summary.ingested += 1
        self.summary.chunks += counted
        self.summary.tokens += tokens
        self.summary.embedded += counted
        self.summary.embedded_tokens += embedded_tokens

    def _inputs(self, record: DocumentRecord, chunks: Sequence[Chunk]) -> list[str]:
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
        """Stage every pending document whose passages all have a vector, in one transaction.

        A batch is staged whole or not at all, so a crash loses at most the batch being embedded.
        """
        assert self.writer is not None
        complete = [
            (record, [ChunkRecord(c, h, vectors[h]) for c, h in zip(chunks, group)])
            for (record, chunks), group in zip(self.pending, hashes)
            if all(h in vectors for h in group)
        ]
        self.pending, self.pending_chunks = [], 0
        if complete:
            self.writer.stage_many(complete)
        for record, records in complete:
            self.keep_staged.add(record.path)
            self.summary.ingested += 1
            self.summary.chunks += len(records)
            self.summary.tokens += sum(r.chunk.tokens for r in records)

    def _vectors(self, texts: list[str], hashes: list[str]) -> dict[str, bytes]:
        assert self.writer is not None
        found = self.writer.stored_vectors(sorted(set(hashes)))
        missing = {h: t for t, h in zip(texts, hashes) if h not in found}
        if missing:
            missing = self._from_batches(missing, found)
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

    def _from_batches(self, missing: dict[str, str], found: dict[str, bytes]) -> dict[str, str]:
        """Take the vectors a Batch API run delivered (`ingest --batch`); what is still missing."""
        assert self.writer is not None
        delivered = self.writer.batch_vectors(list(missing))
        if not delivered:
            return missing
        found.update(delivered)
        self.summary.from_batch += len(delivered)
        self.summary.from_batch_tokens += sum(self.embedder.count_tokens([missing[h] for h in delivered]))
        return {h: t for h, t in missing.items() if h not in delivered}

    def finish(self, removed: list[str]) -> None:
        """Drop stale staged work, publish everything at once, drop the batch vectors published (or unclaimed)."""
        if self.dry_run or self.writer is None:
            self.summary.removed = len(removed)
            return
        self.writer.unstage(p for p in self.staged if p not in self.keep_staged)
        self.summary.removed = len(removed)
        if self.keep_staged or removed:
            self.writer.publish(removed)
        self.writer.finish()


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
    bad = next((key for key, item in value.items() if not storable(item)), None)
    if bad is not None:
        raise UnreadableDocument(
            str(path), f"attribute {bad!r} in the sidecar holds a number no index stores (NaN, infinite, or past 2^63)"
        )
    return value


def hash_text(text: str) -> str:
    """sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
