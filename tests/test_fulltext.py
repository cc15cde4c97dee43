"""The full-text index (tantivy) beside the catalog: derived data, upgraded, repaired and checked against snapshots."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from indexes import Chunk, ChunkRecord, DocumentRecord, LocalIndex, LocalWriter, Manifest
from indexes.catalog import MIGRATIONS
from indexes.fulltext import FOLDER, FORMAT, MARKER
from indexes.manifest import write_manifest

DIM = 4


def chunk(ordinal: int, text: str) -> ChunkRecord:
    vector = (np.arange(DIM, dtype="<f4") + ordinal + len(text)) / 10
    return ChunkRecord(
        Chunk(ordinal, text, len(text.split())), hashlib.sha256(text.encode()).hexdigest(), vector.tobytes()
    )


def publish(index: LocalIndex, path: str, *texts: str) -> None:
    with LocalWriter(index) as writer:
        writer.stage(
            DocumentRecord(path, "h" + path, "text", path.strip("/")), [chunk(n, t) for n, t in enumerate(texts)]
        )
        writer.publish()


def found(index: LocalIndex, *words: str) -> set[str]:
    """The passages' texts a lexical search for any of the words finds."""
    with index.read() as reader:
        hits = reader.lexical(list(words), 100)
        return {stored.text for stored in reader.chunks([cid for cid, _ in hits]).values()}


@pytest.fixture
def index(tmp_path: Path) -> LocalIndex:
    index = LocalIndex.create(tmp_path / "ix", Manifest("test/model", DIM))
    publish(index, "/a.txt", "the red fox jumps", "a quiet river")
    publish(index, "/b.txt", "a red kite over the river")
    return index


def test_the_text_is_stored_once_in_the_catalog(index: LocalIndex) -> None:
    with sqlite3.connect(index.folder / "chunks.sqlite") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "chunks_fts" not in tables and "chunks" in tables
    assert (index.folder / FOLDER / MARKER).read_text() == "2", "the folder says which generation it reflects"
    assert found(index, "red") == {"the red fox jumps", "a red kite over the river"}
    assert 0 < sum(p.stat().st_size for p in (index.folder / FOLDER).iterdir()) < 100_000
    assert index.stats().size_bytes > sum(p.stat().st_size for p in (index.folder / FOLDER).iterdir())


def test_an_index_from_before_is_upgraded_when_opened(tmp_path: Path) -> None:
    """A catalog of schema version 1 (text in an FTS5 table) opens with its text indexed by tantivy, FTS5 gone."""
    folder = tmp_path / "old"
    folder.mkdir()
    with sqlite3.connect(folder / "chunks.sqlite") as conn:
        conn.executescript(f"{MIGRATIONS[0]}; PRAGMA user_version = 1;")
        conn.execute("INSERT INTO documents (id, path, content_hash, title) VALUES (1, '/old.md', 'h', 'Café notes')")
        for cid, text in ((1, "Rivers and bridges"), (2, "Nothing else")):
            row = (cid, text, len(text.split()), "t", np.full(DIM, 0.5, dtype="<f4").tobytes())
            conn.execute(
                "INSERT INTO chunks (id, document_id, ordinal, text, tokens, text_hash, vector) "
                "VALUES (?, 1, 0, ?, ?, ?, ?)",
                row,
            )
            conn.execute(
                "INSERT INTO chunks_fts (rowid, title, heading, text) VALUES (?, 'Café notes', '', ?)", (cid, text)
            )
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    write_manifest(folder, Manifest("test/model", DIM))
    index = LocalIndex.open(folder)
    assert found(index, "river") == {"Rivers and bridges"}
    assert found(index, "cafe") == {"Rivers and bridges", "Nothing else"}, "titles are indexed too"
    with sqlite3.connect(folder / "chunks.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'chunks_fts%'").fetchone()[0] == 0
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    publish(index, "/new.md", "a new river")
    assert found(LocalIndex.open(folder), "river") == {"Rivers and bridges", "a new river"}


@pytest.mark.parametrize("damage", ["missing", "garbage", "behind", "another format"])
def test_a_missing_damaged_or_stale_fulltext_folder_is_rebuilt_from_the_catalog(index: LocalIndex, damage: str) -> None:
    target = index.folder / FOLDER
    if damage == "missing":
        shutil.rmtree(target)
    elif damage == "garbage":
        for path in target.iterdir():
            path.write_bytes(b"not tantivy")
    elif damage == "behind":
        (target / MARKER).write_text("1")  # as if killed between the catalog's commit and the deletes
    else:
        (target / FORMAT).write_text("1")  # built by another version, with another schema
    assert found(LocalIndex.open(index.folder), "river") == {"a quiet river", "a red kite over the river"}
    assert (target / MARKER).read_text() == "2"


def test_hits_a_snapshot_lacks_are_dropped_and_the_next_writer_removes_them(index: LocalIndex) -> None:
    """A publish killed after the full-text index took its passages, before the catalog committed them."""
    with index.read() as reader:
        next_id = max(cid for cid, _ in reader.lexical(["red", "river", "quiet"], 10)) + 1
    with index.fulltext.writer() as text:  # what such a publish leaves: ids the catalog will hand out again
        text.add([(next_id, 999, "Phantom", "", "a phantom river"), (next_id + 1, 999, "Phantom", "", "phantom")])
        text.flush()
    unrepaired = LocalIndex(index.folder, index.manifest)  # opened without the repair `LocalIndex.open` does
    with unrepaired.read() as reader:
        assert reader.lexical(["phantom"], 10) == [], "the engine holds them, the snapshot does not"
    assert found(unrepaired, "river") == {"a quiet river", "a red kite over the river"}
    with unrepaired.read() as reader:
        assert all(0 < score < reader.lexical_ceiling(["river"]) for _, score in reader.lexical(["river"], 10))
    publish(index, "/c.txt", "another river", "and a lake")  # takes the same ids
    assert found(index, "phantom") == set()
    assert found(index, "river") == {"a quiet river", "a red kite over the river", "another river"}
    assert found(index, "lake") == {"and a lake"}


def test_a_long_running_reader_sees_each_publish_and_never_a_passage_its_snapshot_lacks(index: LocalIndex) -> None:
    reader_index = LocalIndex.open(index.folder)  # as `serve` holds it, while ingests run beside it
    assert found(reader_index, "river") == {"a quiet river", "a red kite over the river"}
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            try:
                with reader_index.read() as reader:
                    hits = reader.lexical(["common"], 1000)
                    assert len(reader.chunks([cid for cid, _ in hits])) == len(hits), "every hit is in the snapshot"
                    assert len(hits) <= reader.counts().chunks
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for generation in range(6):  # each publish replaces the document: adds and deletes
            publish(index, "/moving.txt", *(f"common word {generation} {n}" for n in range(5)))
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert found(reader_index, "common") == {f"common word 5 {n}" for n in range(5)}
    assert found(reader_index, "red", "river") == {"the red fox jumps", "a quiet river", "a red kite over the river"}


def test_a_merge_of_vector_segments_keeps_the_fulltext_index_current(index: LocalIndex) -> None:
    """A merge moves the generation but no passage: the folder follows it, nothing to repair."""
    from indexes.merge import optimize

    with index.read() as reader:
        before = reader.counts().generation
    assert optimize(index) is not None
    with index.read() as reader:
        after = reader.counts().generation
    assert after > before and (index.folder / FOLDER / MARKER).read_text() == str(after)
    assert found(LocalIndex.open(index.folder), "river") == {"a quiet river", "a red kite over the river"}
