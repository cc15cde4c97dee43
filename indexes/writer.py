"""Writing to an index: stage documents as they are embedded, then publish them at once.

Staging is committed document by document, so a crash mid-ingest keeps the work done
(the next ingest finds it staged and does not embed it again), while readers keep
seeing the last published state until `publish` swaps the new state in with one
SQLite transaction. The FAISS file of the new generation is written after that.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from types import TracebackType

from . import vectors
from .errors import IndexBusy, IndexStoreError
from .records import ChunkRecord, DocumentRecord, KnownDocument, PublishResult, StagedDocument
from .store import Index

_DOC_COLUMNS = "path, content_hash, mtime, size, type, title, pages, attributes, chunks, tokens"
_CHUNK_COLUMNS = "ordinal, text, heading, page, page_end, char_start, char_end, tokens, text_hash, vector"


class IndexWriter:
    """The single writer of an index (an exclusive lock file keeps others out)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._conn = index.connection()
        self._lock_file: int | None = None

    def __enter__(self) -> IndexWriter:
        fd = os.open(self.index.folder / "write.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise IndexBusy(f"another ingest is writing to {self.index.folder}; wait for it to finish") from exc
        self._lock_file = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing releases the flock
            self._lock_file = None

    def known_documents(self) -> dict[str, KnownDocument]:
        """Every published document's path, hash, size and mtime."""
        rows = self._conn.execute("SELECT path, content_hash, size, mtime FROM documents")
        return {row[0]: KnownDocument(*row) for row in rows}

    def staged_documents(self) -> dict[str, StagedDocument]:
        """Documents staged by an earlier, unfinished ingest, by path."""
        rows = self._conn.execute("SELECT path, content_hash, chunks, tokens FROM staged_documents")
        return {row[0]: StagedDocument(*row) for row in rows}

    def stored_vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Vectors already stored (published or staged) for passages with these hashes."""
        found: dict[str, bytes] = {}
        for start in range(0, len(text_hashes), 500):
            part = list(text_hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            for table in ("chunks", "staged_chunks"):
                sql = f"SELECT text_hash, vector FROM {table} WHERE text_hash IN ({marks})"
                found.update(self._conn.execute(sql, part).fetchall())
        return found

    def stage(self, document: DocumentRecord, chunks: Sequence[ChunkRecord]) -> None:
        """Record a new or changed document with its embedded chunks (committed at once)."""
        doc_row = (
            document.path, document.content_hash, document.mtime, document.size, document.type,
            document.title, document.pages, json.dumps(document.attributes), len(chunks),
            sum(c.tokens for c in chunks),
        )
        chunk_rows = [
            (document.path, c.ordinal, c.text, c.heading, c.page, c.page_end, c.char_start,
             c.char_end, c.tokens, c.text_hash, c.vector)
            for c in chunks
        ]
        with self._transaction():
            self._conn.execute("DELETE FROM staged_chunks WHERE path = ?", (document.path,))
            self._conn.execute(f"INSERT OR REPLACE INTO staged_documents ({_DOC_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", doc_row)
            self._conn.executemany(f"INSERT INTO staged_chunks (path, {_CHUNK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", chunk_rows)

    def unstage(self, paths: Iterable[str]) -> None:
        """Drop staged documents that are no longer wanted."""
        with self._transaction():
            for path in paths:
                self._conn.execute("DELETE FROM staged_chunks WHERE path = ?", (path,))
                self._conn.execute("DELETE FROM staged_documents WHERE path = ?", (path,))

    def set_attributes(self, document_id: int, attributes: dict[str, object]) -> None:
        """Replace a document's attributes in one statement (readers see old or new)."""
        with self._transaction():
            self._conn.execute("UPDATE documents SET attributes = ? WHERE id = ?", (json.dumps(attributes), document_id))

    def touch(self, path: str, mtime: float) -> None:
        """Record a new mtime for a document whose content did not change."""
        with self._transaction():
            self._conn.execute("UPDATE documents SET mtime = ? WHERE path = ?", (mtime, path))

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
        conn = self._conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone (path TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM gone")
        conn.executemany("INSERT OR IGNORE INTO gone VALUES (?)", [(p,) for p in removed])
        if replace_staged:
            conn.execute("DELETE FROM gone WHERE path IN (SELECT path FROM staged_documents)")
        removed_docs = int(conn.execute("SELECT count(*) FROM documents WHERE path IN (SELECT path FROM gone)").fetchone()[0])
        if replace_staged:
            conn.execute("INSERT OR IGNORE INTO gone SELECT path FROM staged_documents")
        replaced = "SELECT id FROM documents WHERE path IN (SELECT path FROM gone)"
        old_ids = [r[0] for r in conn.execute(f"SELECT id FROM chunks WHERE document_id IN ({replaced})")]
        conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in old_ids])
        conn.execute("DELETE FROM documents WHERE path IN (SELECT path FROM gone)")
        return removed_docs, old_ids

    def _bump(self) -> int:
        self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        return int(self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def _last_chunk_id(self) -> int:
        return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'chunks'").fetchone()[0])

    def _publish_catalog(self, removed: list[str]) -> tuple[PublishResult, list[int], int]:
        conn = self._conn
        removed_docs, old_ids = self._drop(removed, replace_staged=True)
        first_new = self._last_chunk_id()
        written = conn.execute(
            f"INSERT INTO documents ({_DOC_COLUMNS}, ingested_at) SELECT {_DOC_COLUMNS}, ? FROM staged_documents",
            (time.time(),),
        ).rowcount
        conn.execute(
            f"INSERT INTO chunks (document_id, {_CHUNK_COLUMNS}) SELECT d.id, "
            + ", ".join(f"s.{c.strip()}" for c in _CHUNK_COLUMNS.split(","))
            + " FROM staged_chunks s JOIN documents d ON d.path = s.path ORDER BY s.path, s.ordinal"
        )
        added = conn.execute(
            "INSERT INTO chunks_fts (rowid, title, heading, text) SELECT c.id, d.title, c.heading, c.text "
            "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id > ?",
            (first_new,),
        ).rowcount
        conn.execute("DELETE FROM staged_chunks")
        conn.execute("DELETE FROM staged_documents")
        generation = self._bump()
        return PublishResult(generation, written, removed_docs, added, len(old_ids)), old_ids, first_new

    def _write_vectors(self, generation: int, old_ids: list[int], first_new: int) -> None:
        folder = self.index.folder
        previous = vectors.file_for(folder, generation - 1)
        if previous.exists():
            index = vectors.load(previous)
            vectors.remove(index, old_ids)
            rows = self._conn.execute("SELECT id, vector FROM chunks WHERE id > ? ORDER BY id", (first_new,)).fetchall()
            vectors.add(index, [r[0] for r in rows], vectors.as_matrix([r[1] for r in rows], index.d))
        else:
            index = self.index.rebuild_vectors(self._conn)
        target = vectors.file_for(folder, generation)
        vectors.save(index, target)
        vectors.remove_stale(folder, keep=target)

    def ensure_vectors_file(self) -> None:
        """Write the FAISS file of the current generation if a crash left it missing."""
        generation = int(self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        target = vectors.file_for(self.index.folder, generation)
        if not target.exists():
            vectors.save(self.index.rebuild_vectors(self._conn), target)
            vectors.remove_stale(self.index.folder, keep=target)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; SQLite errors translated."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self._conn.execute("COMMIT")
            return
        self._conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise IndexStoreError(f"writing the index failed: {exc}") from exc
