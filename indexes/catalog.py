"""The SQLite catalog: documents, chunks (text, positions, vectors), FTS5, staging.

Readers only ever look at `documents`, `chunks` and `chunks_fts`. An ingest writes
into the `staged_*` tables (committed as it goes, so a crash loses little) and then
publishes everything in one transaction that also bumps `meta.generation`.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from .errors import IndexCorrupt

CATALOG_NAME = "chunks.sqlite"

# FTS5 with Porter stemming over Unicode words, accents folded ("café" finds "cafe").
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


# Numbered migrations (SQL scripts): entry i brings a catalog from version i to i + 1.
MIGRATIONS: list[str] = [_MIGRATION_1]


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """Open the catalog in WAL mode (readers never block on a writer) and migrate it."""
    if not create and not path.exists():
        raise IndexCorrupt(f"the catalog {path} is missing")
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.create_function("regexp", 2, _regexp, deterministic=True)
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise IndexCorrupt(f"cannot open the catalog {path}: {exc}") from exc
    return conn


def _regexp(pattern: str, value: object) -> bool:
    """`value REGEXP pattern` (SQLite leaves the operator undefined): Python `re.search`, false for non-text."""
    return isinstance(value, str) and re.search(pattern, value) is not None


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise IndexCorrupt(
            f"the catalog has schema version {version}, newer than this semsearch knows "
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
