"""MilvusIndex and MilvusWriter on Milvus Lite: create/open, snapshots, commits, crashes, the writer lock.

Faults are injected at the pymilvus boundary: `Faulty` wraps the index's pymilvus client (not semsearch code)
and, on the nth call of one method on one collection, raises (a failed request) or SIGKILLs its own process.
Everything else is real: Lite files under tmp_path, the real writer, the real ingest in a child process.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes import (
    Chunk,
    ChunkRecord,
    Comparison,
    DocumentRecord,
    Index,
    IndexBusy,
    IndexCorrupt,
    IndexExists,
    IndexStoreError,
    Manifest,
    PublishResult,
    create_store,
    open_store,
)
from indexes.milvus.store import MilvusIndex
from tests.support.milvus import require_pymilvus

DIMENSION = 8
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _pymilvus() -> None:
    require_pymilvus()


def _manifest(store: str = "milvus") -> Manifest:
    return Manifest("test/model", DIMENSION, store=store)


def _create(folder: Path) -> MilvusIndex:
    index = create_store(folder, _manifest())
    assert isinstance(index, MilvusIndex)
    return index


def _open(folder: Path) -> MilvusIndex:
    index = open_store(folder)
    assert isinstance(index, MilvusIndex)
    return index


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Any]:
    """A new Milvus Lite index in its own folder (the Lite file inside it)."""
    created = _create(tmp_path / "ix")
    yield created
    created.close()


def _document(path: str, version: int = 1, **attributes: Any) -> tuple[DocumentRecord, list[ChunkRecord]]:
    """A document of 2-4 passages with random unit vectors (seeded by path and version)."""
    seed = int.from_bytes(hashlib.sha256(f"{path}:{version}".encode()).digest()[:4], "big")
    rng = np.random.default_rng(seed)
    chunks = []
    for ordinal in range(2 + seed % 3):
        text = f"{path} version {version} passage {ordinal} about rivers and glaciers"
        vector = rng.normal(size=DIMENSION).astype("<f4")
        vector /= np.linalg.norm(vector)
        digest = hashlib.sha256(text.encode()).hexdigest()
        chunks.append(ChunkRecord(Chunk(ordinal, text, len(text.split()), "Intro"), digest, vector.tobytes()))
    record = DocumentRecord(path, f"hash-{path}-{version}", "text", path.upper(), 100, 1.0, None, attributes)
    return record, chunks


def _rows(index: Any, collection: str, expr: str = "") -> int:
    """Rows of one collection, visible or not (`count(*)` with no snapshot filter)."""
    name = getattr(index.names, collection)
    key = {"chunks": "chunk_key", "documents": "document_key", "staged": "staged_id"}[collection]
    everything = f"{key} > -9223372036854775807"
    found = index.connection.call("query", name, filter=expr or everything, output_fields=["count(*)"])
    return int(found[0]["count(*)"])


class Faulty:
    """The index's pymilvus client with one fault: `fault(call)` runs instead of the `nth` call of `method` on the
    collection whose name ends with `suffix` (the other calls pass through)."""

    def __init__(self, client: Any, method: str, suffix: str, nth: int, fault: Callable[[Callable[[], Any]], Any]):
        self._client, self._method, self._suffix, self._nth, self._fault = client, method, suffix, nth, fault
        self.seen = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._method:
            return real

        def call(collection: str, *args: Any, **kwargs: Any) -> Any:
            if collection.endswith(self._suffix):
                self.seen += 1
                if self.seen == self._nth:
                    return self._fault(lambda: real(collection, *args, **kwargs))
            return real(collection, *args, **kwargs)

        return call


def _fail(call: Callable[[], Any]) -> Any:
    from pymilvus.exceptions import MilvusException

    raise MilvusException(message="injected failure")


def _twice(call: Callable[[], Any]) -> Any:
    """A request applied, then sent again (a retry after a lost answer)."""
    call()
    return call()


@pytest.fixture
def faulty(index: Any) -> Iterator[Callable[..., Faulty]]:
    """Install a `Faulty` client on the index; the real one is put back after the test."""
    real = index.connection.client

    def install(method: str, suffix: str, nth: int, fault: Callable[[Callable[[], Any]], Any]) -> Faulty:
        wrapper = Faulty(real, method, suffix, nth, fault)
        index.connection.client = wrapper
        return wrapper

    yield install
    index.connection.client = real


# --- create, open, reopen -----------------------------------------------------------------------------


def test_create_writes_the_manifest_last_and_open_finds_the_collections(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    index = _create(folder)
    names = index.names.all()
    assert all(index.connection.call("has_collection", name) for name in names)
    index.close()
    raw = json.loads((folder / "config.json").read_text())
    assert (raw["store"], raw["milvus_uri"], raw["format_version"]) == ("milvus", "milvus.db", 3)
    assert raw["milvus_collection"].startswith("semsearch_ix_") and "token" not in json.dumps(raw)
    with pytest.raises(IndexExists):
        create_store(folder, _manifest())
    reopened = _open(folder)
    assert reopened.names.all() == names and reopened.stats().counts.documents == 0
    reopened.close()


def test_reopen_sees_what_was_published_and_moved_folders_keep_their_lite_file(tmp_path: Path) -> None:
    index = _create(tmp_path / "ix")
    with index.writer() as writer:
        writer.stage_many([_document("a.md"), _document("b.md")])
        writer.publish()
    counts = index.stats().counts
    index.close()
    (tmp_path / "ix").rename(tmp_path / "moved")
    reopened = _open(tmp_path / "moved")
    assert reopened.stats().counts == counts and counts.documents == 2 and counts.generation == 1
    with reopened.read() as reader:
        assert [d.record.path for d in reader.documents()] == ["a.md", "b.md"]
    assert reopened.stats().size_bytes > 0, "the Lite file inside the folder counts"
    reopened.close()


def test_a_missing_collection_is_named(tmp_path: Path) -> None:
    index = _create(tmp_path / "ix")
    index.connection.call("drop_collection", index.names.staged)
    index.close()
    with pytest.raises(IndexCorrupt, match="_staged"):
        open_store(tmp_path / "ix")


def test_drop_removes_the_collections(tmp_path: Path) -> None:
    index = _create(tmp_path / "ix")
    index.drop()
    assert not any(index.connection.call("has_collection", name) for name in index.names.all())
    index.close()


def test_upkeep_is_milvuss_own(index: MilvusIndex) -> None:
    with index.writer() as writer:
        writer.stage_many([_document("a.md")])
        writer.publish()
        writer.remove(["a.md"])
        writer.tidy(grace=0)
    assert index.maintain() == [] and index.optimize() is None
    assert (_rows(index, "chunks"), _rows(index, "documents")) == (0, 0)


def test_batches_are_refused_with_a_sentence(index: Any) -> None:
    with pytest.raises(IndexStoreError, match="ingest without --batch"):
        index.ledger()
    with index.writer() as writer:
        assert writer.batch_vectors(["x"]) == {}
        with pytest.raises(IndexStoreError, match="not supported on a Milvus index"):
            writer.ledger()


def test_a_second_writer_is_busy(index: Any) -> None:
    with index.writer(), pytest.raises(IndexBusy, match="another ingest"), index.writer():
        pass
    with index.writer():  # released
        pass


def _lease_of(index: MilvusIndex, host: str, expires: float) -> None:
    """A lease row as a writer on `host` leaves it."""
    value = {"host": host, "pid": 4242, "expires": expires}
    index.connection.call("upsert", index.names.meta, [{"key": "lease", "value": value, "_v": [0.0, 0.0]}])


def _lease(index: MilvusIndex) -> list[dict[str, Any]]:
    return list(index.connection.call("query", index.names.meta, filter='key == "lease"', output_fields=["value"]))


def test_a_writer_on_another_host_holding_the_lease_keeps_others_out(index: MilvusIndex) -> None:
    import socket

    _lease_of(index, "elsewhere.example", time.time() + 60)
    with pytest.raises(IndexBusy, match="a writer on elsewhere.example .pid 4242. is writing"), index.writer():
        pass
    assert _lease(index)[0]["value"]["host"] == "elsewhere.example", "a refused writer leaves the lease alone"
    _lease_of(index, "elsewhere.example", time.time() - 1)  # expired: its writer stopped renewing it
    with index.writer():
        assert _lease(index)[0]["value"]["host"] == socket.gethostname()
    assert _lease(index) == [], "a writer gives its lease up when it ends"
    _lease_of(index, socket.gethostname(), time.time() + 60)  # this host's killed writer: the flock is free
    with index.writer():
        pass


# --- the writer gives the local writer's answers --------------------------------------------------------


def _scenario(index: Index) -> tuple[list[PublishResult], list[dict[str, int]]]:
    """Publish, change one document and remove another, remove a third: results and ids after each step."""
    results, ids = [], []

    def step(result: PublishResult) -> None:
        results.append(result)
        with index.read() as reader:
            ids.append({d.record.path: d.id for d in reader.documents()})

    with index.writer() as writer:
        writer.stage_many([_document("a.md"), _document("b.md"), _document("c.md")])
        step(writer.publish())
        writer.stage_many([_document("a.md", 2)])
        step(writer.publish(["b.md", "nowhere.md"]))
        step(writer.remove(["c.md"]))
        writer.stage_many([_document("d.md")])
        step(writer.publish())
    return results, ids


def test_publish_results_and_document_ids_are_the_local_stores(tmp_path: Path) -> None:
    local = create_store(tmp_path / "local", _manifest("local"))
    milvus = create_store(tmp_path / "milvus", _manifest())
    try:
        expected, milvus_results = _scenario(local), _scenario(milvus)
        assert milvus_results == expected
        assert milvus_results[1][1]["a.md"] > milvus_results[1][0]["c.md"], "a changed document gets a new id"
        mine, theirs = milvus.stats().counts, local.stats().counts
        assert (mine.documents, mine.chunks, mine.tokens, mine.generation) == (
            theirs.documents,
            theirs.chunks,
            theirs.tokens,
            theirs.generation,
        )
    finally:
        local.close()
        milvus.close()


def test_staged_documents_and_vectors_survive_until_published(index: Any) -> None:
    a, b = _document("a.md"), _document("b.md")
    with index.writer() as writer:
        writer.stage_many([a])
        writer.stage_chunks("b.md", b[1])  # a large document's passages, not yet the document
    with index.writer() as writer:
        assert set(writer.staged_documents()) == {"a.md"}, "b.md's passages alone are no staged document"
        hashes = [c.text_hash for c in a[1] + b[1]]
        assert writer.stored_vectors(hashes) == {c.text_hash: c.vector for c in a[1] + b[1]}
        writer.stage_document(b[0], len(b[1]), sum(c.chunk.tokens for c in b[1]))
        result = writer.publish()
        assert (result.documents_written, result.chunks_added) == (2, len(a[1]) + len(b[1]))
        assert writer.staged_documents() == {} and _rows(index, "staged") == 0
        assert writer.stored_vectors(hashes[:1]) == {hashes[0]: a[1][0].vector}, "published vectors are found too"
        writer.stage_many([_document("c.md")])
        writer.unstage(["c.md"])
        assert writer.staged_documents() == {} and _rows(index, "staged") == 0


def test_restaging_a_shorter_version_drops_the_longer_ones_passages(index: Any) -> None:
    record, chunks = _document("a.md")
    with index.writer() as writer:
        writer.stage_many([(record, chunks)])
        writer.stage_many([(record, chunks[:1])])
        assert _rows(index, "staged") == 1
        writer.publish()
    with index.read() as reader:
        assert [p.chunk.ordinal for p in reader.passages_of("a.md")] == [0]


def test_a_document_longer_than_a_publish_holds_at_once_is_published_whole_in_order(index: MilvusIndex) -> None:
    from indexes.milvus.writer import PASSAGES

    record, chunks = _document("long.md")
    vector = chunks[0].vector
    long = [ChunkRecord(Chunk(n, f"line {n}", 2), f"hash-{n}", vector) for n in range(PASSAGES + 150)]
    with index.writer() as writer:
        writer.stage_chunks("long.md", long[:PASSAGES])  # a large document arrives a group at a time
        writer.stage_chunks("long.md", long[PASSAGES:])
        writer.stage_document(record, len(long), 2 * len(long))
        writer.stage_many([_document("a.md"), _document("z.md")])
        result = writer.publish()
    assert result.chunks_added == len(long) + len(_document("a.md")[1]) + len(_document("z.md")[1])
    with index.read() as reader:
        passages = reader.passages_of("long.md")
        assert [p.chunk.ordinal for p in passages] == list(range(len(long)))
        ids = [p.chunk_id for p in passages]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), "chunk ids follow the ordinals"
        assert reader.counts().chunks == result.chunks_added
        document = reader.document_at("long.md")
    assert document is not None
    with index.writer() as writer:  # its passages are rewritten a batch at a time, while they are read
        writer.set_attributes(document.id, {"scale": "large"})
        writer.touch("long.md", 7.0)
    with index.read() as reader:
        again = reader.passages_of("long.md")
        assert [p.chunk_id for p in again] == ids
        assert len(reader.dense(np.frombuffer(vector, dtype="<f4"), 2000, Comparison("scale", "eq", "large"))) == len(
            long
        )
        assert len(reader.dense(np.frombuffer(vector, dtype="<f4"), 2000, Comparison("modified", "eq", 7.0))) == len(
            long
        )


def test_attributes_change_in_one_commit_under_the_same_ids(index: Any) -> None:
    with index.writer() as writer:
        writer.stage_many([_document("a.md", team="red"), _document("b.md", team="blue")])
        writer.publish()
    red = Comparison("team", "eq", "red")
    with index.read() as before:
        document = before.document_at("a.md")
        assert document is not None
        passages = before.passages_of("a.md")
        query = np.frombuffer(_document("a.md")[1][0].vector, dtype="<f4")
        with index.writer() as writer:
            writer.set_attributes(document.id, {"team": "green", "year": 2024})
        kept = before.document(document.id)
        assert kept is not None and kept.record.attributes == {"team": "red"}, "a snapshot keeps its state"
        assert {c for c, _ in before.dense(query, 10, red)} == {p.chunk_id for p in passages}
        with index.read() as after:
            changed = after.document(document.id)
            assert changed is not None and changed.record.attributes == {"team": "green", "year": 2024}
            assert [p.chunk_id for p in after.passages_of("a.md")] == [p.chunk_id for p in passages]
            assert after.dense(query, 10, red) == []
            assert {c for c, _ in after.dense(query, 10, Comparison("year", "eq", 2024))} == {
                p.chunk_id for p in passages
            }
            assert after.counts().documents == 2 and after.generation() == before.generation() + 1
    total = len(_document("a.md")[1]) + len(_document("b.md")[1])
    assert _rows(index, "chunks") == total + len(passages), "the old revision waits for the grace period"
    with index.writer() as writer:
        writer.tidy(grace=0)
    assert (_rows(index, "chunks"), _rows(index, "documents")) == (total, 2)
    assert index.published().retired == ()


def test_touch_records_the_new_time_for_filters_too(index: Any) -> None:
    with index.writer() as writer:
        writer.stage_many([_document("a.md")])
        writer.publish()
        writer.touch("a.md", 5000.0)
        assert writer.known_documents()["a.md"].mtime == 5000.0
    query = np.frombuffer(_document("a.md")[1][0].vector, dtype="<f4")
    with index.read() as reader:
        assert reader.dense(query, 5, Comparison("modified", "gt", 4000.0))
        document = reader.document_at("a.md")
        assert document is not None and document.record.mtime == 5000.0


# --- snapshots and commits ------------------------------------------------------------------------------


def test_a_reader_opened_before_a_publish_does_not_see_it(index: Any) -> None:
    with index.writer() as writer:
        writer.stage_many([_document("a.md")])
        writer.publish()
    query = np.frombuffer(_document("b.md")[1][0].vector, dtype="<f4")
    with index.read() as before:
        with index.writer() as writer:
            writer.stage_many([_document("b.md")])
            assert before.document_at("b.md") is None, "staged is never visible"
            writer.publish(["a.md"])
        assert [d.record.path for d in before.documents()] == ["a.md"]
        assert before.document_at("b.md") is None and before.passages_of("a.md")
        assert {before.chunks([c]).get(c) is not None for c, _ in before.dense(query, 10)} == {True}
        assert before.counts().documents == 1
        with index.read() as after:
            assert [d.record.path for d in after.documents()] == ["b.md"]
            assert not after.passages_of("a.md")
            b = after.document_at("b.md")
            assert b is not None and {after.documents_of([c])[c] for c, _ in after.dense(query, 10)} == {b.id}


def test_another_opening_sees_a_commit_once_its_published_row_is_read_again(index: MilvusIndex) -> None:
    from indexes.milvus.store import REFRESH

    other = _open(index.folder)  # another replica of the index (a second opening stands in for it on Lite)
    try:
        assert other.stats().counts.generation == 0
        with index.writer() as writer:
            writer.stage_many([_document("a.md")])
            writer.publish()
        assert index.stats().counts.generation == 1, "the writer's own process sees its commit at once"
        time.sleep(REFRESH)
        with other.read() as reader:
            assert reader.generation() == 1 and [d.record.path for d in reader.documents()] == ["a.md"]
    finally:
        other.close()


def test_a_publish_failing_before_its_commit_shows_nothing_and_the_next_writer_removes_its_rows(
    index: Any, faulty: Callable[..., Faulty]
) -> None:
    with index.writer() as writer:
        writer.stage_many([_document("a.md")])
        writer.publish()
    published = index.published()
    faulty("upsert", "_meta", 2, _fail)  # the commit's request fails (the first takes the writer's lease)
    with index.writer() as writer:
        writer.stage_many([_document("b.md"), _document("a.md", 2)])
        with pytest.raises(IndexStoreError, match="injected"):
            writer.publish(["a.md"])
    index.connection.client = index.connection.client._client
    assert _rows(index, "chunks", f"born > {published.generation}") > 0, "the failed publish left rows"
    with index.read() as reader:
        assert reader.generation() == published.generation
        assert [(d.record.path, d.record.content_hash) for d in reader.documents()] == [("a.md", "hash-a.md-1")]
    with index.writer() as writer:  # the next writer
        assert _rows(index, "chunks", f"born > {published.generation}") == 0
        assert set(writer.staged_documents()) == {"a.md", "b.md"}, "staged work is still there"
        writer.publish()
    with index.read() as reader:
        assert sorted((d.record.path, d.record.content_hash) for d in reader.documents()) == [
            ("a.md", "hash-a.md-2"),
            ("b.md", "hash-b.md-1"),
        ]


def test_a_tidy_failing_before_it_forgets_its_retirements_changes_nothing_visible(
    index: MilvusIndex, faulty: Callable[..., Faulty]
) -> None:
    with index.writer() as writer:
        writer.stage_many([_document("a.md"), _document("b.md")])
        writer.publish()
        writer.remove(["a.md"])
    kept = len(_document("b.md")[1])
    faulty("upsert", "_meta", 2, _fail)  # 1: the lease; 2: the row without the retirements, after the deletes
    with index.writer() as writer, pytest.raises(IndexStoreError, match="injected"):
        writer.tidy(grace=0)
    index.connection.client = index.connection.client._client
    assert _rows(index, "chunks") == kept, "the retired rows are deleted"
    with index.read() as reader:
        assert [d.record.path for d in reader.documents()] == ["b.md"] and len(list(reader.all_chunks())) == kept
        assert reader.counts().documents == 1
    with index.writer() as writer:
        writer.tidy(grace=0)
    assert index.published().retired == ()


def test_requests_applied_twice_never_duplicate_a_row(index: Any, faulty: Callable[..., Faulty]) -> None:
    documents = [_document(f"{n}.md") for n in range(6)]
    chunks = sum(len(c) for _, c in documents)
    faulty("upsert", "_chunks", 1, _twice)  # a retried request whose first try was applied
    with index.writer() as writer:
        writer.stage_many(documents)
        writer.stage_many(documents)  # staging again (a resumed ingest) upserts the same rows
        assert _rows(index, "staged") == chunks
        writer.publish()
    index.connection.client = index.connection.client._client
    faulty("upsert", "_documents", 2, _twice)  # the publish's (staging's is the first)
    with index.writer() as writer:
        writer.stage_many([_document("0.md", 2)])
        writer.publish()
    index.connection.client = index.connection.client._client
    changed = len(_document("0.md", 2)[1]) - len(documents[0][1])
    with index.read() as reader:
        keys = [(c.path, c.chunk.ordinal) for c in reader.all_chunks()]
        assert len(keys) == len(set(keys)) == chunks + changed == reader.counts().chunks
        assert len(reader.documents()) == 6 == reader.counts().documents


# --- kill -9 ------------------------------------------------------------------------------------------

_CHILD = """
import json, os, signal, sys
from pathlib import Path
from ingest import DEFAULT_EMBEDDING_MODEL, Folders, ingest, make_embedder, open_index

index_dir, folder, method, suffix, nth, when = sys.argv[1:7]
embedder = make_embedder(DEFAULT_EMBEDDING_MODEL, cache_dir=Path(os.environ["SEMSEARCH_CACHE_DIR"]))
index, chunking = open_index(Path(index_dir), embedder, None, store="milvus")
client = index.connection.client


class Killing:
    seen = 0

    def __getattr__(self, name):
        real = getattr(client, name)
        if name != method:
            return real

        def call(collection, *args, **kwargs):
            if collection.endswith(suffix):
                Killing.seen += 1
                if Killing.seen == int(nth) and when == "before":
                    os.kill(os.getpid(), signal.SIGKILL)
                answer = real(collection, *args, **kwargs)
                if Killing.seen == int(nth) and when == "after":
                    os.kill(os.getpid(), signal.SIGKILL)
                return answer
            return real(collection, *args, **kwargs)

        return call


index.connection.client = Killing()
summary = ingest(index, embedder, Folders([Path(folder)]), chunking=chunking, batch_size=4)
print(json.dumps({"ingested": summary.ingested}))
"""


def _notes(folder: Path, count: int = 16) -> Path:
    folder.mkdir()
    for n in range(count):
        (folder / f"note-{n:02}.txt").write_text(
            f"Note {n}. " + " ".join(f"Topic {n} sentence {i} about item {i * n}." for i in range(40))
        )
    return folder


def _ingest(index_dir: Path, embedder: Any, folder: Path) -> Any:
    from ingest import Folders, ingest, open_index

    index, chunking = open_index(index_dir, embedder, None, store="milvus")
    try:
        return ingest(index, embedder, Folders([folder]), chunking=chunking, batch_size=4)
    finally:
        index.close()


@pytest.fixture(scope="module")
def clean_ingest(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> tuple[Any, Any]:
    """The notes ingested once without a crash: the counts every killed-and-resumed ingest must reach."""
    require_pymilvus()
    base = tmp_path_factory.mktemp("clean")
    folder = _notes(base / "notes")
    summary = _ingest(base / "ix", embedder, folder)
    assert summary.chunks > summary.ingested + 8, "documents of several passages, staged in several batches"
    index = _open(base / "ix")
    counts = index.stats().counts
    index.close()
    return summary, counts


@pytest.mark.parametrize(
    ("method", "suffix", "nth", "when"),
    [
        ("upsert", "_staged", 2, "after"),  # mid-staging: two batches' passages stored, one batch's documents
        ("upsert", "_chunks", 1, "after"),  # mid-publish: passages born in the new generation, no commit
        ("upsert", "_meta", 2, "before"),  # every row of the publish written, the commit not (1: the lease)
        ("upsert", "_meta", 2, "after"),  # committed, staged rows not yet deleted
        ("upsert", "_staged", 1, "before"),  # before anything was staged
    ],
)
def test_a_killed_ingest_resumes_without_duplicates_or_embedding_staged_work_again(
    tmp_path: Path,
    embedder: Any,
    model_cache: Path,
    clean_ingest: tuple[Any, Any],
    method: str,
    suffix: str,
    nth: int,
    when: str,
) -> None:
    folder = _notes(tmp_path / "notes")
    index_dir = tmp_path / "ix"
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", _CHILD, str(index_dir), str(folder), method, suffix, str(nth), when]
    child = subprocess.run(command, env=env, capture_output=True, timeout=300, cwd=ROOT)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    committed, staged_hashes, resumed = _resume(index_dir, embedder, folder)
    clean, _ = clean_ingest
    published = (suffix, when) == ("_meta", "after")
    assert committed.documents == (clean.ingested if published else 0), "the kill came where it was meant to"
    if not published and suffix != "_staged":
        assert len(staged_hashes) == clean.chunks, "everything was staged before the publish was killed"
    _check_resumed(index_dir, clean_ingest, committed, staged_hashes, resumed)


def test_the_cli_killed_during_its_run_resumes_cleanly(
    tmp_path: Path, embedder: Any, model_cache: Path, clean_ingest: tuple[Any, Any]
) -> None:
    folder = _notes(tmp_path / "notes")
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache), "PYTHONPATH": str(ROOT)}
    killed = 0
    for trial, delay in enumerate((0.1, 0.6)):  # seconds after the writer took its lock
        index_dir = tmp_path / f"ix{trial}"
        cli = [sys.executable, "-c", "from search.cli.main import main; main()", "ingest", str(folder)]
        command = [*cli, "--index", str(index_dir), "--store", "milvus", "--batch-size", "4"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            deadline = time.monotonic() + 120
            while not _writing(index_dir) and process.poll() is None:
                assert time.monotonic() < deadline, "the ingest never started writing"
                time.sleep(0.02)
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait()
        killed += process.returncode == -signal.SIGKILL
        if not (index_dir / "config.json").exists():
            continue  # killed before its index was whole: the next run creates it
        _check_resumed(index_dir, clean_ingest, *_resume(index_dir, embedder, folder))
    assert killed, "at least one run was killed before it finished"


def _writing(index_dir: Path) -> bool:
    """Whether a writer holds the index's write.lock."""
    try:
        fd = os.open(index_dir / "write.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _resume(index_dir: Path, embedder: Any, folder: Path) -> tuple[Any, set[str], Any]:
    """Open a killed ingest's index, check a new writer cleans what it left, then ingest again: the state the
    kill left (counts, staged passages) and the resumed run's summary."""
    index = _open(index_dir)
    committed = index.stats().counts
    with index.writer():  # the next writer: what a killed publish left is gone
        assert _rows(index, "chunks", f"born > {committed.generation}") == 0
        staged_hashes = {r["text_hash"] for r in _staged_rows(index)}
    with index.read() as reader:
        assert reader.counts().documents == len(reader.documents()) == committed.documents
    index.close()
    return committed, staged_hashes, _ingest(index_dir, embedder, folder)


def _check_resumed(
    index_dir: Path, clean_ingest: tuple[Any, Any], committed: Any, staged_hashes: set[str], resumed: Any
) -> None:
    """The resumed ingest embedded only what was neither published nor staged, and left a clean ingest's index."""
    clean, expected = clean_ingest
    missing = clean.embedded - committed.chunks - len(staged_hashes)
    assert resumed.embedded == missing, "published and staged passages are not embedded again"
    index = _open(index_dir)
    try:
        with index.read() as reader:
            keys = [(c.path, c.chunk.ordinal) for c in reader.all_chunks()]
            counts = reader.counts()
            documents = reader.documents()
        assert len(keys) == len(set(keys)), "no passage twice"
        assert (counts.documents, counts.chunks, counts.tokens) == (
            expected.documents,
            expected.chunks,
            expected.tokens,
        )
        assert (len(documents), len(keys)) == (expected.documents, expected.chunks)
        assert _rows(index, "staged") == 0
    finally:
        index.close()


def _staged_rows(index: Any) -> list[dict[str, Any]]:
    from indexes.milvus.schema import scan

    return list(scan(index.connection, index.names.staged, "staged_id > -1", ["text_hash"]))
