"""Vector segments: publishes write only their vectors, deletions are tombstones, merges compact, kills are safe."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from indexes import Chunk, ChunkRecord, Comparison, DocumentRecord, LocalIndex, LocalWriter, Manifest, vectors
from indexes.catalog import CATALOG_NAME, MIGRATIONS
from indexes.merge import MERGE_FACTOR, merge, merge_now, optimize, plan
from indexes.segments import SEGMENTS_DIR, SegmentInfo, prepare

DIM = 16
CENTRES = np.random.default_rng(99).normal(size=(40, DIM)).astype(np.float32)


def unit(seed: int) -> np.ndarray:
    """A vector near one of 40 centres, as real embeddings cluster by topic."""
    rng = np.random.default_rng(seed)
    v = CENTRES[seed % len(CENTRES)] + 0.35 * rng.normal(size=DIM).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def record(ordinal: int, seed: int) -> ChunkRecord:
    text = f"passage {seed} of the corpus"
    return ChunkRecord(Chunk(ordinal, text, 5), hashlib.sha256(text.encode()).hexdigest(), unit(seed).tobytes())


def publish(index: LocalIndex, documents: dict[str, list[int]], removed: tuple[str, ...] = ()) -> None:
    with LocalWriter(index) as writer:
        for path, seeds in documents.items():
            chunks = [record(i, s) for i, s in enumerate(seeds)]
            writer.stage(DocumentRecord(path, f"h{seeds[0]}", "text", path), chunks)
        writer.publish(removed=removed)


def dense(index: LocalIndex, seed: int, k: int = 20, **options: object) -> list[int]:
    with index.read() as reader:
        return [chunk_id for chunk_id, _ in reader.dense(unit(seed), k, **options)]  # type: ignore[arg-type]


def segment_files(index: LocalIndex) -> set[str]:
    return {p.name for p in (index.folder / SEGMENTS_DIR).glob("seg-*.faiss")}


@pytest.fixture
def index(tmp_path: Path) -> LocalIndex:
    return LocalIndex.create(tmp_path / "ix", Manifest("test/model", DIM))


def many_publishes(index: LocalIndex, publishes: int = 25) -> None:
    for p in range(publishes):
        publish(index, {f"d{p}-{d}": [p * 100 + d * 10 + c for c in range(4)] for d in range(3)})
    publish(index, {}, removed=tuple(f"d{p}-0" for p in range(0, publishes, 2)))


def test_each_publish_adds_one_segment_and_a_removal_adds_tombstones(index: LocalIndex) -> None:
    publish(index, {"a": [1, 2], "b": [3]})
    publish(index, {"c": [4]})
    assert len(segment_files(index)) == 2
    publish(index, {}, removed=("a",))
    with index.read() as reader:
        infos = reader.segments()
        assert [(s.vectors, s.tombstones) for s in infos] == [(3, 2), (1, 0)]
        assert reader.counts().chunks == 2
    assert len(segment_files(index)) == 2, "a removal writes no vectors"
    assert set(dense(index, 1)) == {3, 4}, "tombstones never come back from a search"


def test_the_tiered_policy() -> None:
    small = [SegmentInfo(i, f"{i}", "flat", "f32", 10) for i in range(MERGE_FACTOR - 1)]
    assert plan(small) == [], "fewer than MERGE_FACTOR in a tier: nothing to do"
    big = [SegmentInfo(100 + i, "", "flat", "f32", 50_000) for i in range(MERGE_FACTOR)]
    groups = plan([*small, SegmentInfo(50, "", "flat", "f32", 5), *big])
    assert sorted(len(g) for g in groups) == [MERGE_FACTOR, MERGE_FACTOR]
    assert {s.id for s in groups[0]} | {s.id for s in groups[1]} == {*range(MERGE_FACTOR - 1), 50, *range(100, 110)}
    deleted = SegmentInfo(7, "", "flat", "f32", 100, tombstones=40)
    assert plan([deleted]) == [[deleted]], "a segment mostly deleted is rewritten alone"


def test_merges_keep_every_result_and_drop_tombstones(index: LocalIndex) -> None:
    many_publishes(index)
    before = [dense(index, seed, 30) for seed in (5, 1203, 2011)]
    ids = before[0]
    with index.read() as reader:
        assert len(reader.segments()) == 25 and reader.counts().chunks == 25 * 12 - 13 * 4
        stored = reader.vectors(ids)
    results = merge_now(index)
    assert results and all(r.locked_seconds <= r.seconds for r in results)
    assert sum(r.dropped for r in results) == 13 * 4, "every segment a quarter deleted was rewritten"
    with index.read() as reader:
        assert len(reader.segments()) < 25
        assert np.array_equal(reader.vectors(ids), stored), "vectors come back unchanged from merged segments"
    assert [dense(index, seed, 30) for seed in (5, 1203, 2011)] == before
    final = optimize(index)
    assert final is not None and final.segments > 1
    with index.read() as reader:
        (only,) = reader.segments()
        assert (only.vectors, only.tombstones) == (25 * 12 - 13 * 4, 0)
    assert [dense(index, seed, 30) for seed in (5, 1203, 2011)] == before


def test_a_deletion_while_a_merge_builds_is_kept(index: LocalIndex) -> None:
    publish(index, {"a": [1, 2]})
    publish(index, {"b": [3, 4]})
    with index.read() as reader:
        group = reader.segments()
    with LocalWriter(index) as writer:
        # The merge reads its inputs, then "b" is deleted before the merge commits.
        ids = np.array([1, 2, 3, 4], dtype=np.int64)
        prepared = prepare(index.folder, ids, np.vstack([unit(s) for s in (1, 2, 3, 4)]), "f32")
        writer.remove(["b"])
        assert writer.commit_merge(group, prepared, np.zeros(0, dtype=np.int64))
    with index.read() as reader:
        (merged,) = reader.segments()
        assert (merged.vectors, merged.tombstones) == (4, 2), "b's deletion moved to the merged segment"
    assert sorted(dense(index, 3)) == [1, 2]


def test_a_merge_whose_inputs_another_merge_took_is_dropped(index: LocalIndex) -> None:
    many_publishes(index, 12)
    with index.read() as reader:
        stale = reader.segments()[:MERGE_FACTOR]
    assert merge_now(index)
    assert merge(index, stale) is None
    assert not list((index.folder / SEGMENTS_DIR).glob(".*.tmp"))


def test_large_segments_are_hnsw_with_recall_and_exact_on_demand(tmp_path: Path) -> None:
    index = LocalIndex.create(tmp_path / "big", Manifest("test/model", DIM))
    count = vectors.ANN_MIN_VECTORS
    publish(index, {f"doc{d}": list(range(d * 1000, d * 1000 + 1000)) for d in range(count // 1000)})
    with index.read() as reader:
        (segment,) = reader.segments()
        assert segment.kind == "flat", "a publish writes flat: it costs the write of its vectors only"
    (result,) = merge_now(index)
    with index.read() as reader:
        (segment,) = reader.segments()
        assert (segment.kind, result.kind, result.segments) == ("hnsw", "hnsw", 1), "the policy makes it a graph"
    queries = [7, 123, 4567, 20001, 33333, 41234, 49999, 1, 25000, 8888]
    recall = np.mean([len(set(dense(index, q, 10)) & set(dense(index, q, 10, exact=True))) / 10 for q in queries])
    assert recall >= 0.9
    flat = vectors.build(np.arange(1, count + 1), np.vstack([unit(s) for s in range(count)]), kind="flat")
    for q in queries[:3]:
        scores, _ = vectors.search(flat, unit(q), 10)
        with index.read() as reader:
            found = [score for _, score in reader.dense(unit(q), 10, exact=True)]
        assert np.allclose(found, scores, atol=1e-5), "exact search is a full scan"
    where = Comparison("path", "in", ("doc5", "doc40"))  # far from the query (seed 7 is in doc0)
    with index.read() as reader:
        allowed = set(reader.allowed_chunks(where).tolist())
    found = dense(index, 7, 10, where=where)
    assert len(found) == 10 and set(found) <= allowed, "a filter finds its matches in a graph segment too"
    assert found == dense(index, 7, 10, where=where, exact=True), "a filter makes the search exact"


@pytest.mark.parametrize("storage", ["f16", "sq8"])
def test_compact_vector_storage(tmp_path: Path, storage: str) -> None:
    index = LocalIndex.create(tmp_path / storage, Manifest("test/model", DIM, vector_storage=storage))
    publish(index, {f"doc{d}": list(range(d * 50, d * 50 + 50)) for d in range(20)})
    exact = LocalIndex.create(tmp_path / "f32", Manifest("test/model", DIM))
    publish(exact, {f"doc{d}": list(range(d * 50, d * 50 + 50)) for d in range(20)})
    with index.read() as reader:
        assert [s.storage for s in reader.segments()] == [storage]
        error = np.abs(reader.vectors([1, 2, 3]) - np.vstack([unit(s) for s in (0, 1, 2)])).max()
        assert error < (0.01 if storage == "f16" else 0.05)
    recall = np.mean([len(set(dense(index, q, 10)) & set(dense(exact, q, 10))) / 10 for q in range(0, 1000, 50)])
    assert recall >= 0.9
    sizes = {ix: sum(p.stat().st_size for p in (ix.folder / SEGMENTS_DIR).glob("*.faiss")) for ix in (index, exact)}
    assert sizes[index] < sizes[exact] * (0.6 if storage == "f16" else 0.35)


def test_an_index_from_before_segments_reads_then_upgrades(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"embedding_model": "test/model", "dimension": DIM}))
    conn = sqlite3.connect(folder / CATALOG_NAME, isolation_level=None)
    conn.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    conn.execute("INSERT INTO documents (path, content_hash, title) VALUES ('a', 'h', 'A')")
    for n in range(1, 6):
        conn.execute(
            "INSERT INTO chunks (document_id, ordinal, text, tokens, text_hash, vector) VALUES (1, ?, ?, 3, ?, ?)",
            (n, f"old passage {n}", f"hash{n}", unit(n).tobytes()),
        )
        conn.execute("INSERT INTO chunks_fts (rowid, title, heading, text) VALUES (?, 'A', '', ?)", (n, f"old {n}"))
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    conn.close()
    (folder / "vectors-1.faiss").write_bytes(b"the old single vector file")
    index = LocalIndex.open(folder)
    assert dense(index, 3, 5)[0] == 3, "an old index answers before any writer upgrades it"
    with LocalWriter(index):
        pass
    with index.read() as reader:
        assert [(s.vectors, s.tombstones) for s in reader.segments()] == [(5, 0)]
        assert np.allclose(reader.vectors([2]), unit(2))
    assert dense(index, 3, 5)[0] == 3 and not (folder / "vectors-1.faiss").exists()
    publish(index, {"b": [40]})
    assert dense(index, 40, 1) == [6]


def test_kill_9_at_any_point_of_a_merge_leaves_the_index_whole(tmp_path: Path) -> None:
    index = LocalIndex.create(tmp_path / "ix", Manifest("test/model", DIM))
    for p in range(3):  # three segments of 20,000 vectors: the merge builds an HNSW segment of 60,000
        start = p * 20_000
        publish(index, {f"p{p}d{d}": list(range(start + d * 1000, start + d * 1000 + 1000)) for d in range(20)})
    publish(index, {}, removed=("p0d0", "p1d5"))
    expected = [dense(index, q, 10, exact=True) for q in (11, 30_500, 59_999)]
    chunks = 60_000 - 2000
    script = (
        "from pathlib import Path; from indexes import LocalIndex; from indexes.merge import optimize; "
        f"optimize(LocalIndex.open(Path({str(index.folder)!r})))"
    )
    moments = ["temporary file", "renamed file", 0.3, 1.0, 2.5]
    caught: list[str] = []
    for moment in moments:
        process = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent.parent)
        caught.append(_kill_at(process, index.folder, moment))
        reopened = LocalIndex.open(index.folder)
        with reopened.read() as reader:
            assert reader.counts().chunks == chunks
            assert sum(s.vectors - s.tombstones for s in reader.segments()) == chunks
        assert [dense(reopened, q, 10, exact=True) for q in (11, 30_500, 59_999)] == expected
        with LocalWriter(reopened):  # the next writer tidies: every segment file left is one the catalog names
            with reopened.read() as reader:
                named = {s.file for s in reader.segments()}
            assert named <= segment_files(reopened) and not list((reopened.folder / SEGMENTS_DIR).glob(".*.tmp"))
    assert "temporary file" in caught, caught
    assert subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent).returncode == 0
    with LocalIndex.open(index.folder).read() as reader:
        (only,) = reader.segments()
        assert (only.kind, only.vectors, only.tombstones) == ("hnsw", chunks, 0)


def _kill_at(process: subprocess.Popen[bytes], folder: Path, moment: str | float) -> str:
    """SIGKILL the merge at a moment: when a file shows up, or after some seconds; which moment it was."""
    directory = folder / SEGMENTS_DIR
    before = {p.name for p in directory.glob("seg-*.faiss")}
    deadline = time.monotonic() + (moment if isinstance(moment, float) else 120)
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if moment == "temporary file" and list(directory.glob(".seg-*.tmp")):
                break
            if moment == "renamed file" and {p.name for p in directory.glob("seg-*.faiss")} - before:
                break
            time.sleep(0.002)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            return str(moment)
        return "finished"
    finally:
        process.wait()


def test_serve_merges_in_the_background_and_optimize_merges_all(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    from search.http import create_app
    from search.settings import Settings

    from .conftest import ServerThread

    folder = tmp_path / "notes"
    folder.mkdir()
    index_dir = tmp_path / "ix"
    for n in range(MERGE_FACTOR + 2):  # one ingest per file: one segment each
        (folder / f"note{n}.txt").write_text(f"Note number {n} is about topic {n % 3}.")
        result = run("ingest", str(folder), "--index", str(index_dir), "--embedding-model", "hash/bow-384", "--json")
        assert result.exit_code == 0, result.output
    assert len(LocalIndex.open(index_dir).stats().segments) == MERGE_FACTOR + 2
    settings = Settings(index_dir=index_dir, merge_interval=0.2)
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/search", json={"query": "note topic", "k": 3}).status_code == 200  # opens the index
        deadline = time.monotonic() + 60
        while len(client.get("/stats").json()["segments"]) > 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = client.get("/stats").json()
        assert len(stats["segments"]) == 3 and sum(s["vectors"] for s in stats["segments"]) == MERGE_FACTOR + 2
        hits = client.post("/search", json={"query": "Note number 7", "k": 1, "exact": True}).json()["results"]
        assert hits[0]["text"] == "Note number 7 is about topic 1."
        bad = client.post("/search", json={"query": "x", "exact": "yes"})
        assert bad.status_code == 422 and "exact" in bad.text
    report = json.loads(run("optimize", "--index", str(index_dir), "--json").output)
    assert (report["segments_before"], report["segments_after"], report["vectors"]) == (3, 1, MERGE_FACTOR + 2)
    text = run("search", "Note number 7", "--index", str(index_dir), "--exact", "-k", "1").output
    assert "Note number 7 is about topic 1." in text
    stats_text = run("stats", "--index", str(index_dir)).output
    assert "flat f32 12 vectors, 0 deleted" in stats_text
