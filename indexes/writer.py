"""Writing to an index: stage documents as they are embedded, then publish them at once.

Staging is committed a batch of documents at a time, so a crash mid-ingest keeps the work done
(the next ingest finds it staged and does not embed it again), while readers keep
seeing the last published state until `publish` swaps the new state in with one
SQLite transaction. The FAISS file of the new generation is written after that.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType

from . import vectors
from .errors import IndexBusy
from .reader import catalog_generation
from .records import Chunk, ChunkRecord, DocumentRecord, KnownDocument, PublishResult, StagedDocument
from .store import Index

_DOC_COLUMNS = "path, content_hash, mtime, size, type, title, pages, attributes, chunks, tokens"
_CHUNK_COLUMNS = "ordinal, text, heading, page, page_end, char_start, char_end, tokens, text_hash, vector"


class IndexWriter:
    """The single writer of an index (an exclusive lock file keeps others out)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._catalog = index.catalog()
        self._lock_file: int | None = None

    def __enter__(self) -> IndexWriter:
        fd = os.open(self.index.folder / "write.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise IndexBusy(f"another ingest is writing to {self.index.folder}; wait for it to finish") from exc
        self._lock_file = fd
        vectors.remove_leftovers(self.index.folder)  # no other writer: every temporary file is a dead one's
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._catalog.rollback()
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing releases the flock
            self._lock_file = None

    def known_documents(self) -> dict[str, KnownDocument]:
        """Every published document's path, hash, size and mtime."""
        rows = self._catalog.rows("SELECT path, content_hash, size, mtime FROM documents")
        return {row[0]: KnownDocument(*row) for row in rows}

    def staged_documents(self) -> dict[str, StagedDocument]:
        """Documents staged by an earlier, unfinished ingest, by path."""
        rows = self._catalog.rows("SELECT path, content_hash, chunks, tokens FROM staged_documents")
        return {row[0]: StagedDocument(*row) for row in rows}

    def stored_vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Vectors already stored (published or staged) for passages with these hashes."""
        found: dict[str, bytes] = {}
        for start in range(0, len(text_hashes), 500):
            part = list(text_hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            for table in ("chunks", "staged_chunks"):
                sql = f"SELECT text_hash, vector FROM {table} WHERE text_hash IN ({marks})"
                found.update(self._catalog.rows(sql, part))
        return found

    def stage(self, document: DocumentRecord, chunks: Sequence[ChunkRecord]) -> None:
        """Record a new or changed document with its embedded chunks (committed at once)."""
        self.stage_many([(document, chunks)])

    def stage_many(self, documents: Sequence[tuple[DocumentRecord, Sequence[ChunkRecord]]]) -> None:
        """Record several documents with their chunks in one transaction: all of them are staged, or none.

        One commit per batch, not per document: a commit costs about as much as staging a passage.
        A path given twice keeps its last document, as two `stage` calls would.
        """
        documents = list({d.path: (d, chunks) for d, chunks in documents}.values())
        with self._transaction():
            self._catalog.run_many("DELETE FROM staged_chunks WHERE path = ?", [(d.path,) for d, _ in documents])
            self._insert_chunks([(d.path, c) for d, chunks in documents for c in chunks])
            self._insert_documents([(d, len(chunks), sum(c.chunk.tokens for c in chunks)) for d, chunks in documents])

    def stage_chunks(self, path: str, chunks: Sequence[ChunkRecord]) -> None:
        """Stage some passages of a large document ahead of the document (see `stage_document`).

        The document is not staged until then: an interrupted ingest leaves passages whose
        vectors the next one reuses, and a publish never takes them.
        """
        with self._transaction():
            self._catalog.run("DELETE FROM staged_documents WHERE path = ?", (path,))
            self._insert_chunks([(path, c) for c in chunks], replace=True)

    def stage_document(self, document: DocumentRecord, chunks: int, tokens: int) -> None:
        """Stage a document whose `chunks` passages `stage_chunks` stored (leftovers past them go)."""
        with self._transaction():
            self._catalog.run("DELETE FROM staged_chunks WHERE path = ? AND ordinal >= ?", (document.path, chunks))
            self._insert_documents([(document, chunks, tokens)])

    def _insert_chunks(self, chunks: Iterable[tuple[str, ChunkRecord]], *, replace: bool = False) -> None:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        sql = f"{verb} INTO staged_chunks (path, {_CHUNK_COLUMNS}) VALUES ({_marks(11)})"
        self._catalog.run_many(sql, ((path, *_chunk_row(c.chunk), c.text_hash, c.vector) for path, c in chunks))

    def _insert_documents(self, documents: Iterable[tuple[DocumentRecord, int, int]]) -> None:
        """Staged documents with their passage and token counts."""
        sql = f"INSERT OR REPLACE INTO staged_documents ({_DOC_COLUMNS}) VALUES ({_marks(10)})"
        self._catalog.run_many(sql, (_document_row(d, chunks, tokens) for d, chunks, tokens in documents))

    def unstage(self, paths: Iterable[str]) -> None:
        """Drop staged documents that are no longer wanted."""
        with self._transaction():
            for path in paths:
                self._catalog.run("DELETE FROM staged_chunks WHERE path = ?", (path,))
                self._catalog.run("DELETE FROM staged_documents WHERE path = ?", (path,))

    def set_attributes(self, document_id: int, attributes: dict[str, object]) -> None:
        """Replace a document's attributes in one statement (readers see old or new)."""
        with self._transaction():
            self._catalog.run("UPDATE documents SET attributes = ? WHERE id = ?", (json.dumps(attributes), document_id))

    def touch(self, path: str, mtime: float) -> None:
        """Record a new mtime for a document whose content did not change."""
        with self._transaction():
            self._catalog.run("UPDATE documents SET mtime = ? WHERE path = ?", (mtime, path))

    def publish(self, removed: Iterable[str] = ()) -> PublishResult:
        """Swap staged documents in and removed ones out, in one transaction; then the FAISS file."""
        with self._transaction():
            result, old_ids, first_new = self._publish_catalog(list(removed))
        self._write_vectors(result.generation, old_ids, first_new)
        return result

    def remove(self, paths: Iterable[str]) -> PublishResult:
        """Take published documents out at once, leaving staged work (an unfinished ingest's) alone."""
        with self._transaction():
            removed, old_ids = self._drop(list(paths), replace_staged=False)
            generation = self._bump()
            last = self._last_chunk_id()
        self._write_vectors(generation, old_ids, last)
        return PublishResult(generation, 0, removed, 0, len(old_ids))

    def _drop(self, removed: list[str], *, replace_staged: bool) -> tuple[int, list[int]]:
        """Delete documents `removed` (and those staged anew, if `replace_staged`) with their passages."""
        catalog = self._catalog
        catalog.run("CREATE TEMP TABLE IF NOT EXISTS gone (path TEXT PRIMARY KEY)")
        catalog.run("DELETE FROM gone")
        catalog.run_many("INSERT OR IGNORE INTO gone VALUES (?)", [(p,) for p in removed])
        if replace_staged:
            catalog.run("DELETE FROM gone WHERE path IN (SELECT path FROM staged_documents)")
        removed_docs = int(catalog.value("SELECT count(*) FROM documents WHERE path IN (SELECT path FROM gone)"))
        if replace_staged:
            catalog.run("INSERT OR IGNORE INTO gone SELECT path FROM staged_documents")
        replaced = "SELECT id FROM documents WHERE path IN (SELECT path FROM gone)"
        old_ids = [r[0] for r in catalog.rows(f"SELECT id FROM chunks WHERE document_id IN ({replaced})")]
        catalog.run_many("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in old_ids])
        catalog.run("DELETE FROM documents WHERE path IN (SELECT path FROM gone)")
        return removed_docs, old_ids

    def _bump(self) -> int:
        self._catalog.run("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        return catalog_generation(self._catalog)

    def _last_chunk_id(self) -> int:
        return int(self._catalog.value("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'chunks'"))

    def _publish_catalog(self, removed: list[str]) -> tuple[PublishResult, list[int], int]:
        catalog = self._catalog
        removed_docs, old_ids = self._drop(removed, replace_staged=True)
        first_new = self._last_chunk_id()
        written = catalog.run(
            f"INSERT INTO documents ({_DOC_COLUMNS}, ingested_at) SELECT {_DOC_COLUMNS}, ? FROM staged_documents",
            (time.time(),),
        )
        catalog.run(
            f"INSERT INTO chunks (document_id, {_CHUNK_COLUMNS}) SELECT d.id, "
            + ", ".join(f"s.{c.strip()}" for c in _CHUNK_COLUMNS.split(","))
            + " FROM staged_chunks s JOIN staged_documents sd ON sd.path = s.path JOIN documents d ON d.path = s.path"
            + " ORDER BY s.path, s.ordinal"  # passages of a document not staged whole (an interrupted one) stay out
        )
        added = catalog.run(
            "INSERT INTO chunks_fts (rowid, title, heading, text) SELECT c.id, d.title, c.heading, c.text "
            "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id > ?",
            (first_new,),
        )
        catalog.run("DELETE FROM staged_chunks")
        catalog.run("DELETE FROM staged_documents")
        generation = self._bump()
        return PublishResult(generation, written, removed_docs, added, len(old_ids)), old_ids, first_new

    def _write_vectors(self, generation: int, old_ids: list[int], first_new: int) -> None:
        folder = self.index.folder
        previous = vectors.file_for(folder, generation - 1)
        if previous.exists():
            index = vectors.load(previous)
            vectors.remove(index, old_ids)
            rows = self._catalog.rows("SELECT id, vector FROM chunks WHERE id > ? ORDER BY id", (first_new,))
            vectors.add(index, [r[0] for r in rows], vectors.as_matrix([r[1] for r in rows], index.d))
        else:
            index = self.index.rebuild_vectors(self._catalog)
        target = vectors.file_for(folder, generation)
        vectors.save(index, target)
        vectors.remove_stale(folder, keep=target)

    def ensure_vectors_file(self) -> None:
        """Write the FAISS file of the current generation if a crash left it missing."""
        target = vectors.file_for(self.index.folder, catalog_generation(self._catalog))
        if not target.exists():
            vectors.save(self.index.rebuild_vectors(self._catalog), target)
            vectors.remove_stale(self.index.folder, keep=target)

    def _transaction(self) -> AbstractContextManager[None]:
        return self._catalog.transaction(write=True)


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _document_row(document: DocumentRecord, chunks: int, tokens: int) -> tuple[object, ...]:
    """A staged document's columns, in `_DOC_COLUMNS` order."""
    return (
        document.path,
        document.content_hash,
        document.mtime,
        document.size,
        document.type,
        document.title,
        document.pages,
        json.dumps(document.attributes),
        chunks,
        tokens,
    )


def _chunk_row(chunk: Chunk) -> tuple[object, ...]:
    """A passage's columns, in `_CHUNK_COLUMNS` order (before text_hash and vector)."""
    return (
        chunk.ordinal,
        chunk.text,
        chunk.heading,
        chunk.page,
        chunk.page_end,
        chunk.char_start,
        chunk.char_end,
        chunk.tokens,
    )
