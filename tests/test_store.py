"""The on-disk index: create/open, publish, snapshots, crash recovery, mismatches."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from indexes import (
    Chunk,
    ChunkRecord,
    DimensionMismatch,
    DocumentRecord,
    IndexBusy,
    IndexCorrupt,
    IndexExists,
    IndexNotFound,
    LocalIndex,
    LocalWriter,
    Manifest,
)

DIM = 8


def vector(seed: int) -> bytes:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def chunk(ordinal: int, text: str, seed: int) -> ChunkRecord:
    return ChunkRecord(Chunk(ordinal, text, len(text.split())), hashlib.sha256(text.encode()).hexdigest(), vector(seed))


def document(path: str, digest: str = "h", title: str = "") -> DocumentRecord:
    return DocumentRecord(path=path, content_hash=digest, type="text", title=title or path)


@pytest.fixture
def index(tmp_path: Path) -> LocalIndex:
    return LocalIndex.create(
        tmp_path / "ix", Manifest("test/model", DIM, chunking={"max_tokens": 256, "overlap_tokens": 32})
    )


def test_open_missing_index_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="semsearch ingest"):
        LocalIndex.open(tmp_path / "nothing")


def test_create_twice_is_refused(index: LocalIndex) -> None:
    with pytest.raises(IndexExists):
        LocalIndex.create(index.folder, index.manifest)


def test_model_mismatch_is_an_error(index: LocalIndex) -> None:
    reopened = LocalIndex.open(index.folder)
    reopened.manifest.check_model("test/model", DIM)
    with pytest.raises(DimensionMismatch, match="test/model"):
        reopened.manifest.check_model("other/model", DIM)
    with pytest.raises(DimensionMismatch):
        reopened.manifest.check_model("test/model", DIM * 2)


def test_publish_makes_documents_searchable(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(document("a"), [chunk(0, "alpha beta", 1), chunk(1, "gamma delta", 2)])
        writer.stage(document("b"), [chunk(0, "epsilon zeta", 3)])
        result = writer.publish()
    assert (result.documents_written, result.chunks_added, result.generation) == (2, 3, 1)
    with index.read() as reader:
        query = np.frombuffer(vector(2), dtype="<f4")
        best_id, best_score = reader.dense(query, 1)[0]
        assert reader.chunks([best_id])[best_id].text == "gamma delta"
        assert best_score == pytest.approx(1.0, abs=1e-5)
        lexical = reader.lexical(["zeta"], 5)
        assert [reader.chunks([i])[i].path for i, _ in lexical] == ["b"]
        assert reader.counts().documents == 2


def test_replace_and_remove(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(document("a"), [chunk(0, "old text", 1)])
        writer.stage(document("b"), [chunk(0, "bee text", 2)])
        writer.publish()
        writer.stage(document("a", "h2"), [chunk(0, "new text", 3)])
        result = writer.publish(removed=["b"])
    assert (result.documents_written, result.documents_removed, result.chunks_removed) == (1, 1, 2)
    with index.read() as reader:
        ids = [i for i, _ in reader.lexical(["text"], 10)]
        assert [reader.chunks(ids)[i].text for i in ids] == ["new text"]
        assert len(reader.dense(np.frombuffer(vector(1), dtype="<f4"), 10)) == 1
    stats = index.stats().as_dict()
    assert [(s["vectors"], s["tombstones"]) for s in stats["segments"]] == [(2, 2), (1, 0)]
    assert stats["tombstones"] == 2, "replaced and removed passages wait as tombstones in their segment"
    assert len(list((index.folder / "segments").glob("seg-*.faiss"))) == 2, "a publish writes only its new vectors"


def test_staged_work_is_invisible_until_published(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(document("a"), [chunk(0, "staged only", 1)])
        with index.read() as reader:
            assert reader.counts().chunks == 0
            assert reader.lexical(["staged"], 5) == []
        assert {p: d.content_hash for p, d in writer.staged_documents().items()} == {"a": "h"}


def test_staged_work_survives_a_crash_and_its_vectors_are_reused(index: LocalIndex) -> None:
    writer = LocalWriter(index).__enter__()
    writer.stage(document("a"), [chunk(0, "survives", 1)])
    # The process "dies" here: no publish, no clean exit; the lock goes with the file descriptor.
    writer.__exit__(None, None, None)
    reopened = LocalIndex.open(index.folder)
    with LocalWriter(reopened) as writer:
        assert {p: d.content_hash for p, d in writer.staged_documents().items()} == {"a": "h"}
        digest = hashlib.sha256(b"survives").hexdigest()
        assert writer.stored_vectors([digest]) == {digest: vector(1)}


def test_a_second_writer_is_refused(index: LocalIndex) -> None:
    with LocalWriter(index), pytest.raises(IndexBusy):
        LocalWriter(LocalIndex.open(index.folder)).__enter__()


def test_a_corrupt_segment_is_a_clear_error_naming_the_file(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(document("a"), [chunk(0, "one", 1), chunk(1, "two", 2)])
        writer.publish()
    (path,) = (index.folder / "segments").glob("seg-*.faiss")
    path.write_bytes(b"not a faiss file")
    reopened = LocalIndex.open(index.folder)
    with reopened.read() as reader, pytest.raises(IndexCorrupt, match=path.name):
        reader.dense(np.frombuffer(vector(1), dtype="<f4"), 5)
    with reopened.read() as reader:
        assert [i for i, _ in reader.lexical(["one"], 5)], "the rest of the index still answers"


def test_readers_see_one_generation_while_a_writer_publishes(index: LocalIndex) -> None:
    """Every snapshot holds whole documents of a single generation: 0 or 20 chunks, never a mix."""
    seen: set[int] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        reader_index = LocalIndex.open(index.folder)
        while not stop.is_set():
            try:
                with reader_index.read() as reader:
                    counts = reader.counts()
                    dense = reader.dense(np.frombuffer(vector(0), dtype="<f4"), 1000)
                    rows = reader.chunks([i for i, _ in dense])
                    assert len(rows) == len(dense) == counts.chunks
                    seen.add(counts.chunks)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        with LocalWriter(index) as writer:
            for generation in range(1, 6):
                for d in range(4):
                    writer.stage(
                        document(f"doc{d}", f"g{generation}"),
                        [chunk(c, f"g{generation} d{d} c{c}", generation * 100 + d * 10 + c) for c in range(5)],
                    )
                writer.publish()
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen <= {0, 20}


def test_remove_leaves_an_unfinished_ingest_staged(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(document("a"), [chunk(0, "alpha text", 1)])
        writer.publish()
        writer.stage(document("b"), [chunk(0, "beta text", 2)])  # an ingest that has not finished
        result = writer.remove(["a"])
        assert (result.documents_removed, result.chunks_removed) == (1, 1)
        assert set(writer.staged_documents()) == {"b"}
    with index.read() as reader:
        assert reader.counts().documents == 0
        assert reader.dense(np.frombuffer(vector(2), dtype="<f4"), 5) == []


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_files_of_dead_writers_go_when_a_writer_starts_and_a_live_one_s_stay(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(document("a"), [chunk(0, "one", 1)])
        writer.publish()
    folder = index.folder / "segments"
    dead = folder / f".seg-{_dead_pid()}-0a.faiss.tmp"  # what a writer killed mid-write leaves
    in_flight = folder / f".seg-{os.getpid()}-0b.faiss.tmp"  # a live process (a merge) may still be writing it
    unnamed = folder / f"seg-{os.getpid()}-0c.faiss"  # renamed, then killed before its commit: no row names it
    for path in (dead, in_flight, unnamed):
        path.write_bytes(b"partial")
    with LocalWriter(LocalIndex.open(index.folder)):
        assert not dead.exists() and not unnamed.exists()
        assert in_flight.exists(), "a live process's temporary file is left to it"
    with index.read() as reader:
        assert len(reader.dense(np.frombuffer(vector(1), dtype="<f4"), 5)) == 1


def test_passages_staged_ahead_of_their_document_are_never_published(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(document("a"), [chunk(0, "published", 1)])
        writer.publish()
    with LocalWriter(index) as writer:  # a large document, interrupted after its first group
        writer.stage_chunks("a", [chunk(0, "half of a new version", 2)])
        writer.stage(document("b"), [chunk(0, "another", 3)])
        assert set(writer.staged_documents()) == {"b"}
        writer.publish()
    with index.read() as reader:
        assert sorted(c.chunk.text for c in reader.all_chunks()) == ["another", "published"]


def test_a_document_staged_in_groups_is_published_whole(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage_chunks("a", [chunk(0, "first", 1), chunk(1, "second", 2), chunk(2, "stale third", 3)])
        writer.stage_chunks("a", [chunk(1, "second again", 4)])
        writer.stage_document(document("a"), chunks=2, tokens=3)
        assert writer.staged_documents()["a"].chunks == 2
        writer.publish()
    with index.read() as reader:
        assert [c.chunk.text for c in reader.all_chunks()] == ["first", "second again"]
