"""Writing to an index: stage documents as they are embedded, then publish them at once.

Staging is committed a batch of documents at a time, so a crash mid-ingest keeps the work done
(the next ingest finds it staged and does not embed it again), while readers keep
seeing the last published state until `publish` swaps the new state in with one
SQLite transaction. The new vectors become one new segment file, written inside that
transaction before it commits: a killed publish leaves a file no generation names,
which the next writer deletes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType

import numpy as np

from . import batches, fulltext, segments
from .batches import BatchLedger
from .errors import IndexBusy
from .fulltext import FullTextWriter
from .locks import hold_write_lock
from .reader import catalog_generation
from .records import Chunk, ChunkRecord, DocumentRecord, KnownDocument, PublishResult, StagedDocument
from .segments import SegmentInfo
from .store import LocalIndex

_BULK_FREE_PAGES = 10_000  # 40 MB free: below this, incremental_vacuum is quick enough
_DOC_COLUMNS = "path, content_hash, mtime, size, type, title, pages, attributes, chunks, tokens"
_CHUNK_COLUMNS = "ordinal, text, heading, page, page_end, char_start, char_end, tokens, text_hash"


class LocalWriter:
    """The single writer of an index (an exclusive lock file keeps others out)."""

    def __init__(self, index: LocalIndex, *, wait: float = 0.0) -> None:
        self.index = index
        self._catalog = index.catalog()
        self._lock_file: int | None = None
        self._wait = wait  # seconds to wait for another writer (0: IndexBusy at once)

    def __enter__(self) -> LocalWriter:
        self._lock_file = hold_write_lock(self.index.folder, self._wait)
        # Checkpoint the WAL every 64 MiB written, not every 4 MiB: 7-11% faster ingest measured, and
        # `tidy` folds it in after each publish anyway.
        self._catalog.rows("PRAGMA wal_autocheckpoint=16384")
        try:
            self.ensure_vectors_file()
            self._sync_fulltext()
        except BaseException:
            self.__exit__(None, None, None)
            raise
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
        published: list[tuple[str, int, int | None]] = []
        for start in range(0, len(text_hashes), 500):
            part = list(text_hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            found.update(
                self._catalog.rows(f"SELECT text_hash, vector FROM staged_chunks WHERE text_hash IN ({marks})", part)
            )
            sql = f"SELECT text_hash, id, segment FROM chunks WHERE text_hash IN ({marks})"
            published += [row for row in self._catalog.rows(sql, part) if row[0] not in found]
        if published:
            view = self.index.segment_set(self._catalog, catalog_generation(self._catalog))
            stored = view.vectors([(chunk_id, segment) for _, chunk_id, segment in published])
            for text_hash, chunk_id, _ in published:
                if chunk_id in stored:
                    found.setdefault(text_hash, stored[chunk_id].astype("<f4").tobytes())
        return found

    def batch_vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Vectors a Batch API run delivered for passages with these hashes (`indexes/batches.py`)."""
        return batches.vectors(self._catalog, text_hashes)

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
        sql = f"{verb} INTO staged_chunks (path, {_CHUNK_COLUMNS}, vector) VALUES ({_marks(11)})"
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
        """Replace a document's attributes in one transaction (readers see old or new).

        It is a new generation, so what readers keep per generation (facets, for one) is read again.
        """
        with self._transaction():
            self._catalog.run("UPDATE documents SET attributes = ? WHERE id = ?", (json.dumps(attributes), document_id))
            generation = self._bump()
        self.index.fulltext.advance(generation - 1, generation)  # no passage moved

    def touch(self, path: str, mtime: float) -> None:
        """Record a new mtime for a document whose content did not change."""
        with self._transaction():
            self._catalog.run("UPDATE documents SET mtime = ? WHERE path = ?", (mtime, path))

    def publish(self, removed: Iterable[str] = ()) -> PublishResult:
        """Swap staged documents in and removed ones out, with their vectors as a new segment, in one transaction."""
        self._sync_fulltext()
        # The full-text index takes the new passages before the catalog commits and lets the
        # removed ones go after it (`indexes/fulltext.py`): readers drop hits their snapshot lacks.
        with self.index.fulltext.writer() as text:
            with self._transaction():
                result, old_ids = self._publish_catalog(list(removed), text)
            text.delete(old_ids)
            text.commit(result.generation)
        self.tidy()
        return result

    def remove(self, paths: Iterable[str]) -> PublishResult:
        """Take published documents out at once, leaving staged work (an unfinished ingest's) alone."""
        self._sync_fulltext()
        with self.index.fulltext.writer() as text:
            with self._transaction():
                removed, old_ids = self._drop(list(paths), replace_staged=False)
                generation = self._bump()
            text.delete(old_ids)
            text.commit(generation)
        self.tidy()
        return PublishResult(generation, 0, removed, 0, len(old_ids))

    def _drop(self, removed: list[str], *, replace_staged: bool) -> tuple[int, list[int]]:
        """Delete documents `removed` (and those staged anew, if `replace_staged`) with their passages.

        The passages' vectors stay in their segments as tombstones until a merge drops them.
        """
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
        catalog.run(
            "INSERT OR IGNORE INTO tombstones (chunk_id, segment) SELECT id, coalesce(segment, 0) FROM chunks "
            f"WHERE document_id IN ({replaced})"
        )
        catalog.run("DELETE FROM documents WHERE path IN (SELECT path FROM gone)")
        return removed_docs, old_ids

    def _bump(self) -> int:
        self._catalog.run("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
        return catalog_generation(self._catalog)

    def _last_chunk_id(self) -> int:
        return int(self._catalog.value("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'chunks'"))

    def _sync_fulltext(self) -> None:
        """Repair the full-text index if a crash (or a failed publish) left it behind the catalog."""
        self.index.fulltext.sync(self._catalog, lambda: catalog_generation(self._catalog))

    def _publish_catalog(self, removed: list[str], text: FullTextWriter) -> tuple[PublishResult, list[int]]:
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
        added = 0
        for rows in catalog.stream(f"{fulltext.PASSAGES} WHERE c.id > ? ORDER BY c.id", (first_new,)):
            text.add(rows)
            added += len(rows)
        text.flush()  # durable before the catalog commits
        self._write_segment(first_new)
        catalog.run("DELETE FROM staged_chunks")
        catalog.run("DELETE FROM staged_documents")
        generation = self._bump()
        return PublishResult(generation, written, removed_docs, added, len(old_ids)), old_ids

    def _write_segment(self, first_new: int) -> None:
        """The vectors of the chunks just published (ids above `first_new`), as a new segment."""
        sql = (
            "SELECT c.id, s.vector FROM chunks c JOIN documents d ON d.id = c.document_id "
            "JOIN staged_chunks s ON s.path = d.path AND s.ordinal = c.ordinal WHERE c.id > ? ORDER BY c.id"
        )
        self._add_segment(*segments.stored_vectors(self._catalog, sql, self.index.manifest.dimension, (first_new,)))
        self._catalog.run("UPDATE chunks SET segment = last_insert_rowid() WHERE id > ?", (first_new,))

    def _add_segment(self, ids: np.ndarray, matrix: np.ndarray) -> int | None:
        storage = self.index.manifest.vector_storage
        return segments.write(self.index.folder, self._catalog, ids, matrix, storage)

    def commit_merge(self, group: Sequence[SegmentInfo], prepared: segments.Prepared, dropped: np.ndarray) -> bool:
        """Swap merged segments for the one `prepared` from them, in one transaction; False if one is gone.

        The tombstones left out of the new segment go; those added since (deletions while it
        was built) move to it, as do the chunks of the merged segments.
        """
        catalog = self._catalog
        with self._transaction():
            if {info.id for info in group} - {info.id for info in segments.live(catalog)}:
                return False
            merged = segments.commit(self.index.folder, catalog, prepared)
            inputs = ",".join(str(int(info.id)) for info in group)
            catalog.run(f"UPDATE segments SET retired_at = ? WHERE id IN ({inputs})", (time.time(),))
            catalog.run(f"UPDATE chunks SET segment = ? WHERE segment IN ({inputs})", (merged,))
            catalog.run_many("DELETE FROM tombstones WHERE chunk_id = ?", [(int(i),) for i in dropped])
            catalog.run(f"UPDATE tombstones SET segment = ? WHERE segment IN ({inputs})", (merged,))
            generation = self._bump()
        self.index.fulltext.advance(generation - 1, generation)  # no passage moved
        self.tidy()
        return True

    def vacuum(self) -> None:
        """Rewrite the catalog without free pages (`semsearch optimize`); readers go on meanwhile."""
        self._catalog.script("PRAGMA auto_vacuum=INCREMENTAL; VACUUM;")  # an older catalog gets auto_vacuum too

    def tidy(self) -> None:
        """Hand back the pages and files no generation needs any more (see `segments.tidy`).

        Housekeeping: if another process holds the catalog, it waits for the next writer.
        """
        try:
            with self._transaction():
                segments.tidy(self.index.folder, self._catalog)
            # The free pages staging left go back to the file system, and the WAL is folded in and
            # cut back. After a bulk load most of the file is free: copying the live pages (VACUUM)
            # beats moving each freed one (incremental_vacuum took 5.9 s at 100k passages and ~47 s
            # at 300k, VACUUM 0.6 s and 1.7 s). Run as scripts: `execute` steps a pragma only once.
            free = int(self._catalog.value("PRAGMA freelist_count"))
            pages = int(self._catalog.value("PRAGMA page_count"))
            vacuum = "VACUUM" if free > max(pages // 2, _BULK_FREE_PAGES) else "PRAGMA incremental_vacuum"
            self._catalog.script(f"{vacuum}; PRAGMA wal_checkpoint(TRUNCATE);")
        except IndexBusy:
            pass

    def finish(self) -> None:
        """The end of an ingest: an index from before segments gets its vectors as the first segment, and
        the Batch API vectors published now are dropped from the ledger (a read when none wait)."""
        self.ensure_vectors_file()
        self.ledger().tidy()

    def ledger(self) -> BatchLedger:
        """The Batch API ledger of this index."""
        return self.index.ledger()

    def ensure_vectors_file(self) -> None:
        """Bring an index from before segments up to date: its vectors become the first segment."""
        catalog = self._catalog
        if segments.has_legacy_vectors(catalog):
            with self._transaction():
                legacy = segments.stored_vectors(catalog, segments.LEGACY_ROWS, self.index.manifest.dimension)
                segment = self._add_segment(*legacy)
                catalog.run("UPDATE chunks SET segment = ?", (segment,))
                catalog.run("DELETE FROM legacy_vectors")
                generation = self._bump()
            self.index.fulltext.advance(generation - 1, generation)  # no passage moved
        self.tidy()

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
