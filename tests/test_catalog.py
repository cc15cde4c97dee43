"""SQLite's errors become ours at the catalog, whatever the call: busy, damaged, or anything else."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexes import DocumentRecord, IndexBusy, IndexCorrupt, IndexStoreError, LocalIndex, LocalWriter, Manifest
from indexes.catalog import CATALOG_NAME


@pytest.fixture
def index(tmp_path: Path) -> LocalIndex:
    index = LocalIndex.create(tmp_path / "ix", Manifest("test/model", 4))
    with LocalWriter(index) as writer:
        writer.stage(DocumentRecord("a.md", "h", "markdown", "A"), [])
        writer.publish()
    return index


@pytest.fixture
def other_process(index: LocalIndex) -> Iterator[sqlite3.Connection]:
    """A connection of someone else's (a sqlite3 shell, say) to the same catalog file."""
    conn = sqlite3.connect(index.folder / CATALOG_NAME, isolation_level=None)
    yield conn
    conn.close()


def test_a_write_lock_held_elsewhere_is_index_busy(index: LocalIndex, other_process: sqlite3.Connection) -> None:
    other_process.execute("BEGIN IMMEDIATE")
    opened = LocalIndex.open(index.folder, busy_timeout=0.05)
    with opened.read() as reader:
        assert reader.counts().documents == 1, "in WAL mode readers do not wait for a writer"
    with LocalWriter(opened) as writer, pytest.raises(IndexBusy, match="locked by another process.*retry"):
        writer.stage(DocumentRecord("b.md", "h", "markdown", "B"), [])
    other_process.execute("ROLLBACK")
    with LocalWriter(opened) as writer:
        writer.stage(DocumentRecord("b.md", "h", "markdown", "B"), [])
        assert writer.publish().documents_written == 1


def test_an_exclusive_lock_elsewhere_is_busy_for_readers_too(
    index: LocalIndex, other_process: sqlite3.Connection
) -> None:
    index.close()  # nobody else has it open, as when a tool took it over while the server was down
    other_process.execute("PRAGMA locking_mode=EXCLUSIVE")
    other_process.execute("BEGIN EXCLUSIVE")
    other_process.execute("UPDATE documents SET title = 'held'")
    with pytest.raises(IndexBusy):
        opened = LocalIndex.open(index.folder, busy_timeout=0.05)
        with opened.read() as reader:
            reader.counts()


def test_a_garbage_catalog_is_index_corrupt(index: LocalIndex) -> None:
    index.close()
    for name in (CATALOG_NAME, f"{CATALOG_NAME}-wal", f"{CATALOG_NAME}-shm"):
        (index.folder / name).unlink(missing_ok=True)
    (index.folder / CATALOG_NAME).write_bytes(b"this is not a database, just some bytes" * 200)
    with pytest.raises(IndexCorrupt, match="not a semsearch catalog.*ingest again"):
        LocalIndex.open(index.folder)


def test_a_missing_catalog_is_index_corrupt(index: LocalIndex) -> None:
    index.close()
    (index.folder / CATALOG_NAME).unlink()
    with pytest.raises(IndexCorrupt, match="missing"):
        LocalIndex.open(index.folder)


def test_other_sqlite_errors_are_index_store_errors_that_say_what_to_check(index: LocalIndex) -> None:
    index.close()
    for name in (CATALOG_NAME, f"{CATALOG_NAME}-wal", f"{CATALOG_NAME}-shm"):
        (index.folder / name).unlink(missing_ok=True)
    (index.folder / CATALOG_NAME).mkdir()  # a folder where the file should be: SQLite cannot open it
    with pytest.raises(IndexStoreError, match="check that its disk has room") as caught:
        LocalIndex.open(index.folder)
    assert type(caught.value) is IndexStoreError
    assert isinstance(caught.value.__cause__, sqlite3.Error), "the original error is kept as the cause"
