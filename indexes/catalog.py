"""The SQLite catalog: documents, chunks (text, positions), FTS5, segments, staging.

Readers only ever look at `documents` and `chunks` (the lexical index is `indexes/fulltext.py`). An ingest writes
into the `staged_*` tables (committed as it goes, so a crash loses little) and then
publishes everything in one transaction that also bumps `meta.generation`. This is the
only module that imports `sqlite3`: every call goes through `Catalog`, which maps errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .errors import IndexBusy, IndexCorrupt, IndexStoreError
from .filter_sql import GLOB_FUNCTION
from .globs import glob_matches

CATALOG_NAME = "chunks.sqlite"
WAL_SIZE_LIMIT = 64 * 2**20  # bytes of write-ahead log kept after a checkpoint
BUSY_TIMEOUT = 30.0  # seconds to wait for another process's lock before IndexBusy

# The tokenizer of the FTS5 table of catalogs before migration 3 (the lexical index is now tantivy's).
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"


_MIGRATION_1 = f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('generation', '0');
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            content_hash TEXT NOT NULL,
            mtime REAL, size INTEGER, type TEXT, title TEXT, pages INTEGER,
            attributes TEXT NOT NULL DEFAULT '{{}}',
            chunks INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            ingested_at REAL
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            heading TEXT NOT NULL DEFAULT '',
            page INTEGER, page_end INTEGER,
            char_start INTEGER, char_end INTEGER,
            tokens INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        CREATE INDEX chunks_document ON chunks(document_id);
        CREATE INDEX chunks_text_hash ON chunks(text_hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            title, heading, text, tokenize = '{FTS_TOKENIZER}'
        );
        CREATE TABLE staged_documents (
            path TEXT PRIMARY KEY,
            content_hash TEXT NOT NULL,
            mtime REAL, size INTEGER, type TEXT, title TEXT, pages INTEGER,
            attributes TEXT NOT NULL DEFAULT '{{}}',
            chunks INTEGER NOT NULL, tokens INTEGER NOT NULL
        );
        CREATE TABLE staged_chunks (
            path TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL, heading TEXT NOT NULL,
            page INTEGER, page_end INTEGER, char_start INTEGER, char_end INTEGER,
            tokens INTEGER NOT NULL, text_hash TEXT NOT NULL, vector BLOB NOT NULL,
            PRIMARY KEY (path, ordinal)
        );
        CREATE INDEX staged_chunks_hash ON staged_chunks(text_hash);
"""


# Vectors move out of the catalog into immutable FAISS segment files (`indexes/segments.py`):
# a segment row names its file; a tombstone is a chunk deleted from the catalog whose vector
# still sits in a segment (searches skip it until a merge drops it); `chunks.segment` says
# where a chunk's vector lives. Vectors of an older catalog wait in `legacy_vectors` until
# the first writer turns them into a segment.
_MIGRATION_2 = """
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            storage TEXT NOT NULL,
            vectors INTEGER NOT NULL,
            created_at REAL NOT NULL,
            retired_at REAL
        );
        CREATE TABLE tombstones (chunk_id INTEGER PRIMARY KEY, segment INTEGER NOT NULL);
        CREATE TABLE legacy_vectors (id INTEGER PRIMARY KEY, vector BLOB NOT NULL);
        INSERT INTO legacy_vectors SELECT id, vector FROM chunks;
        ALTER TABLE chunks DROP COLUMN vector;
        ALTER TABLE chunks ADD COLUMN segment INTEGER;
"""

# The lexical index moves out of the catalog into `<index>/fulltext/` (tantivy, `indexes/fulltext.py`),
# which indexes the text the catalog keeps: the text is stored once. Opening the index rebuilds
# the full-text index from the catalog (`Index.repair_fulltext`).
_MIGRATION_DROP_FTS5 = """
        DROP TABLE IF EXISTS chunks_fts;
"""

# Embedding through OpenAI's Batch API (`indexes/batches.py`): each batch submitted is recorded, with the
# text hash of every input of every request line, before it is polled, so a later run resumes it instead of
# paying again; the vectors it delivers wait in `batch_vectors` (by text hash) until an ingest publishes them.
_MIGRATION_BATCHES = """
        CREATE TABLE embedding_batches (
            input_file_id TEXT PRIMARY KEY,
            batch_id TEXT,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            requests INTEGER NOT NULL,
            inputs INTEGER NOT NULL,
            tokens INTEGER NOT NULL
        );
        CREATE TABLE embedding_batch_inputs (
            input_file_id TEXT NOT NULL REFERENCES embedding_batches(input_file_id) ON DELETE CASCADE,
            custom_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            PRIMARY KEY (input_file_id, custom_id, position)
        );
        CREATE INDEX embedding_batch_inputs_hash ON embedding_batch_inputs(text_hash);
        CREATE TABLE batch_vectors (text_hash TEXT PRIMARY KEY, vector BLOB NOT NULL, created_at REAL NOT NULL);
"""

# Numbered migrations (SQL scripts): entry i brings a catalog from version i to i + 1.
MIGRATIONS: list[str] = [_MIGRATION_1, _MIGRATION_2, _MIGRATION_DROP_FTS5, _MIGRATION_BATCHES]

_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


@contextmanager
def catalog_errors(path: Path) -> Iterator[None]:
    """The one place SQLite's errors become ours: locked -> IndexBusy, damaged -> IndexCorrupt."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _our_error(exc, path) from exc


def _our_error(exc: sqlite3.Error, path: Path) -> IndexStoreError:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
    if code in _BUSY:
        return IndexBusy(f"the catalog {path} is locked by another process ({exc}); retry when it has finished")
    if code in _DAMAGED:
        return IndexCorrupt(
            f"the catalog {path} is damaged or not a semsearch catalog ({exc}); "
            "move the index folder aside and ingest again"
        )
    return IndexStoreError(f"the catalog {path} failed: {exc}; check that its disk has room and its folder is writable")


class Catalog:
    """One connection to a catalog; every statement goes through here, so its errors are ours."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        with catalog_errors(self.path):
            return self._conn.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with catalog_errors(self.path):
            found: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
            return found

    def value(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first column of the first row of a query (which must return one)."""
        found = self.row(sql, params)
        if found is None:
            raise IndexCorrupt(f"the catalog {self.path} lacks what this query expects: {sql}")
        return found[0]

    def stream(self, sql: str, params: Sequence[object] = (), size: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query in batches of `size`, without holding them all."""
        with catalog_errors(self.path):
            cursor = self._conn.execute(sql, params)
            while rows := cursor.fetchmany(size):
                yield rows

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        with catalog_errors(self.path):
            return self._conn.execute(sql, params).rowcount

    def run_many(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Execute one statement once per row of parameters."""
        with catalog_errors(self.path):
            self._conn.executemany(sql, rows)

    def script(self, sql: str) -> None:
        """Run statements to their end (a pragma such as `incremental_vacuum` needs every step)."""
        with catalog_errors(self.path):
            self._conn.executescript(sql)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[None]:
        """BEGIN (IMMEDIATE, to write) ... COMMIT, rolled back if the block raises."""
        self.run("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.run("COMMIT")

    def rollback(self) -> None:
        """End an open transaction without its changes (SQLite may have ended it already)."""
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close the connection."""
        with catalog_errors(self.path):
            self._conn.close()


def connect(path: Path, *, create: bool = False, busy_timeout: float = BUSY_TIMEOUT) -> Catalog:
    """Open the catalog in WAL mode (readers never block on a writer) and migrate it."""
    if not create and not path.exists():
        raise IndexCorrupt(f"the catalog {path} is missing: move the index folder aside and ingest again")
    with catalog_errors(path):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout)
        try:
            if create:
                # Before the first table: pages freed by publishing staged work go back to the
                # file system on `PRAGMA incremental_vacuum` (see the writer), not kept as free pages.
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")  # a checkpoint cuts the WAL back to this
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.create_function(GLOB_FUNCTION, 2, _glob, deterministic=True)
            _migrate(conn, path)
        except BaseException:
            conn.close()
            raise
    return Catalog(conn, path)


def _glob(pattern: str, value: object) -> bool:
    """The `glob` filter in SQL: the same rule as in Python, false for non-text."""
    return isinstance(value, str) and glob_matches(pattern, value)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise IndexCorrupt(
            f"the catalog {path} has schema version {version}, newer than this semsearch knows "
            f"({len(MIGRATIONS)}): upgrade semsearch"
        )
    for number in range(version, len(MIGRATIONS)):
        # One script, one transaction: a migration is applied whole or not at all.
        script = f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
        try:
            conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
