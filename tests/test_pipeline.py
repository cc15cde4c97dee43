"""The ingest pipeline on real files: incremental runs, bad files, crash and resume."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexes import DimensionMismatch, LocalIndex, Manifest, open_store
from ingest import ChunkingConfig, Folders, IngestConfigError, WalkOptions, ingest, open_index

from .conftest import DATA


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "docs"
    shutil.copytree(DATA / "sample", target)
    return target


def ingest_folders(index_dir: Path, embedder, *paths: Path, store: str = "local", **options):  # type: ignore[no-untyped-def]
    index, chunking = open_index(index_dir, embedder, None, store=store)
    try:
        return ingest(index, embedder, Folders(list(paths), WalkOptions(**options)), chunking=chunking)
    finally:
        index.close()


def test_first_run_ingests_every_document(tmp_path: Path, folder: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    summary = ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    assert summary.seen == summary.ingested == len(files) >= 8
    assert summary.skipped == []
    assert summary.chunks == summary.embedded > summary.ingested
    stats = open_store(tmp_path / "ix").stats()
    assert (stats.counts.documents, stats.counts.chunks) == (len(files), summary.chunks)
    assert stats.manifest.embedding_model == embedder.name


def test_second_run_embeds_nothing_that_is_unchanged(tmp_path: Path, folder: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    again = ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    assert (again.ingested, again.embedded, again.removed) == (0, 0, 0)
    assert again.unchanged == again.seen


def test_touched_but_identical_file_is_not_reembedded(tmp_path: Path, folder: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    target = folder / "photosynthesis.md"
    os.utime(target, (time.time() + 100, time.time() + 100))
    again = ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    assert (again.ingested, again.embedded, again.unchanged) == (0, 0, again.seen)


def test_changed_file_replaces_its_chunks_and_deleted_file_is_removed(
    tmp_path: Path, folder: Path, embedder, store: str
) -> None:  # type: ignore[no-untyped-def]
    ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    changed = folder / "coffee-brewing.txt"
    changed.write_text(
        changed.read_text() + "\n\nCold brew steeps coarse coffee grounds in cold water for twelve hours.\n"
    )
    (folder / "chess-rules.html").unlink()
    again = ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    assert (again.ingested, again.removed) == (1, 1)
    assert 0 < again.embedded < again.chunks, "unchanged passages of the changed file reuse their vectors"
    index = open_store(tmp_path / "ix")
    with index.read() as reader:
        paths = {row.path for row in reader.chunks([i for i, _ in reader.lexical(["chess", "coffee"], 100)]).values()}
        assert str(changed) in paths
        assert not any(p.endswith("chess-rules.html") for p in paths)
        texts = [row.text for row in reader.chunks([i for i, _ in reader.lexical(["twelve"], 10)]).values()]
        assert any("Cold brew" in t for t in texts)


def test_other_folders_in_the_same_index_are_left_alone(tmp_path: Path, folder: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    ingest_folders(tmp_path / "ix", embedder, DATA / "formats" / "guide.md", store=store)
    again = ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    assert again.removed == 0
    assert open_store(tmp_path / "ix").stats().counts.documents == again.seen + 1


def test_bad_files_are_named_with_a_reason_and_do_not_stop_the_run(tmp_path: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    summary = ingest_folders(tmp_path / "ix", embedder, DATA / "formats", store=store)
    reasons = {Path(s.path).name: s.reason for s in summary.skipped}
    assert reasons["encrypted.pdf"].startswith("encrypted PDF")
    assert reasons["corrupt.pdf"].startswith("corrupt PDF")
    assert reasons["empty.txt"] == "empty file"
    assert reasons["binary.txt"].startswith("binary")
    assert "no extractable text" in reasons["scanned.pdf"]
    assert summary.ingested >= 6
    assert summary.seen == summary.ingested + len(summary.skipped)


def test_files_over_the_size_limit_are_skipped(tmp_path: Path, folder: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    summary = ingest_folders(tmp_path / "ix", embedder, folder, max_bytes=2000)
    assert summary.skipped and all("limit" in s.reason for s in summary.skipped)


def test_pdf_page_numbers_reach_the_catalog(tmp_path: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    ingest_folders(tmp_path / "ix", embedder, DATA / "sample" / "water-cycle.pdf", store=store)
    with open_store(tmp_path / "ix").read() as reader:
        rows = list(reader.all_chunks())
    assert {r.page for r in rows} >= {1, 2, 3}


def test_other_model_or_chunking_on_an_existing_index_is_an_error(tmp_path: Path, folder: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    ingest_folders(tmp_path / "ix", embedder, folder / "photosynthesis.md")
    with pytest.raises(IngestConfigError, match="chunked with 256"):
        open_index(tmp_path / "ix", embedder, ChunkingConfig(128, 16))
    other = tmp_path / "other"
    LocalIndex.create(other, Manifest("local/another-model", 384))
    with pytest.raises(DimensionMismatch, match="another-model"):
        open_index(other, embedder, None)


def test_killed_ingest_leaves_an_index_that_opens_and_the_next_run_resumes(
    tmp_path: Path, embedder, model_cache: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(60):  # enough work (a few seconds) to be caught in the middle
        (folder / f"note-{n:02}.txt").write_text(
            f"Note {n}. " + " ".join(f"Topic {n} sentence {i} about item {i * n}." for i in range(40))
        )
    index_dir = tmp_path / "ix"
    ingest_folders(index_dir, embedder, DATA / "sample" / "photosynthesis.md")  # a published state to keep
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache)}
    command = [
        sys.executable,
        "-c",
        "from search.cli.main import main; main()",
        "ingest",
        str(folder),
        "--index",
        str(index_dir),
        "--batch-size",
        "4",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _staged(index_dir) < 3:
            assert process.poll() is None, "the ingest finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    index = LocalIndex.open(index_dir)
    assert index.stats().counts.documents == 1, "readers still see the last published state"
    staged = _staged_rows(index_dir)  # whole documents (of whole batches) only
    resumed = ingest_folders(index_dir, embedder, folder)
    assert resumed.ingested == 60
    assert resumed.embedded == resumed.chunks - sum(staged.values()), "what was staged is kept, the rest embedded"
    assert resumed.resumed == len(staged), "the summary says how many documents it took up"
    assert LocalIndex.open(index_dir).stats().counts.documents == 61


def _staged(index_dir: Path) -> int:
    try:
        with sqlite3.connect(index_dir / "chunks.sqlite", timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM staged_documents").fetchone()[0])
    except sqlite3.Error:
        return 0


def _attributes(index_dir: Path) -> dict[str, dict[str, object]]:
    """Each stored document's attributes, by path."""
    index = open_store(index_dir)
    try:
        with index.read() as reader:
            return {d.record.path: d.record.attributes for d in reader.documents()}
    finally:
        index.close()


def test_attributes_from_front_matter_and_sidecars(tmp_path: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    import json

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text(
        "---\ntitle: Alpha\nteam: research\nyear: 2024\ndraft: false\ntags: [x, y]\n---\n\n"
        "# Alpha\n\nGlaciers move slowly."
    )
    (folder / "b.txt").write_text("Volcanoes erupt when pressure builds.")
    (folder / "b.txt.meta.json").write_text(json.dumps({"team": "geology", "reviewed": True}))
    ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    rows = _attributes(tmp_path / "ix")
    assert rows[str(folder / "a.md")] == {"title": "Alpha", "team": "research", "year": 2024, "draft": False}
    assert rows[str(folder / "b.txt")] == {"team": "geology", "reviewed": True}
    (folder / "b.txt.meta.json").write_text(json.dumps({"team": "volcanology"}))
    again = ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    assert again.ingested == 1 and again.embedded == 0, "a sidecar edit re-ingests the file, reusing its vectors"
    assert _attributes(tmp_path / "ix")[str(folder / "b.txt")] == {"team": "volcanology"}


def test_numbers_no_store_holds_are_refused_by_name(tmp_path: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    import json

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("---\nserial: 123456789012345678901234567890\nratio: nan\n---\n\n# A\n\nGlaciers.")
    (folder / "b.txt").write_text("Volcanoes erupt when pressure builds.")
    (folder / "b.txt.meta.json").write_text(json.dumps({"id": 2**70}))
    (folder / "c.txt").write_text("Rivers carve valleys.")
    (folder / "c.txt.meta.json").write_text('{"nested": {"n": NaN}}')
    summary = ingest_folders(tmp_path / "ix", embedder, folder, store=store)
    reasons = {Path(s.path).name: s.reason for s in summary.skipped}
    assert set(reasons) == {"b.txt.meta.json", "c.txt.meta.json"} or set(reasons) == {"b.txt", "c.txt"}
    assert all("no index stores" in reason for reason in reasons.values())
    assert summary.ingested == 1, "one bad sidecar skips its own file, not the run"
    front = _attributes(tmp_path / "ix")[str(folder / "a.md")]
    assert front == {"serial": "123456789012345678901234567890", "ratio": "nan"}, "kept as text"


def test_killed_while_writing_vectors_leaves_no_temporary_file_and_the_next_run_resumes(
    tmp_path: Path, model_cache: Path
) -> None:
    from tests.support.openai_sim import create_simulator

    from .conftest import ServerThread

    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(20):  # ~2,000 passages of 1,536 floats: a vector file of ~12 MB, written and fsynced each run
        (folder / f"note-{n:02}.txt").write_text(" ".join(f"Note {n} line {i} says {i * n}." for i in range(600)))
    index_dir = tmp_path / "ix"
    with ServerThread(create_simulator()) as sim:
        command = [
            *("ingest", str(folder), "--index", str(index_dir), "--chunk-tokens", "64"),
            *("--embedding-model", "openai/text-embedding-3-small", "--base-url", f"{sim.url}/v1"),
        ]
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "SEMSEARCH_CACHE_DIR": str(model_cache)}
        assert _cli(command, env).wait() == 0
        for attempt in range(20):  # each run publishes a change, then writes its vector file; kill it then
            (folder / "note-00.txt").write_text(f"Revision {attempt} of note zero. " * 50)
            if _kill_while_writing_vectors(_cli(command, env), index_dir):
                break
        else:
            pytest.fail("no run was caught writing its vector file")
        index = LocalIndex.open(index_dir)
        assert not _temporary_files(index_dir), "opening the index removes the killed writer's temporary file"
        _assert_consistent(index, documents=20)
        (folder / "note-01.txt").write_text("A new version of note one, after the crash.")
        assert _cli(command, env).wait() == 0, "the next ingest runs"
    index = LocalIndex.open(index_dir)
    _assert_consistent(index, documents=20)
    with index.read() as reader:
        texts = [c.chunk.text for c in reader.all_chunks()]
    assert any("after the crash" in t for t in texts) and any("Revision" in t for t in texts)
    assert not _temporary_files(index_dir)
    with index.read() as reader:
        named = {s.id for s in reader.segments()}
    files = list((index_dir / "segments").glob("seg-*.faiss"))
    assert len(files) == len(named), "a killed writer's segment file is removed by the next write"


def _cli(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from search.cli.main import main; main()", *arguments]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _temporary_files(index_dir: Path) -> list[Path]:
    return [p for p in index_dir.rglob("*.tmp")]


def _kill_while_writing_vectors(process: subprocess.Popen[bytes], index_dir: Path) -> bool:
    """SIGKILL the run as soon as its temporary vector file appears; whether one was left behind."""
    try:
        while process.poll() is None:
            if _temporary_files(index_dir):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        process.wait()
    return bool(_temporary_files(index_dir))


def _assert_consistent(index: LocalIndex, documents: int) -> None:
    """The catalog holds `documents` whole documents, and the vectors are exactly its passages."""
    import numpy as np

    with index.read() as reader:
        counts = reader.counts()
        query = np.full(index.manifest.dimension, 1.0, dtype=np.float32)
        found = reader.dense(query, counts.chunks + 10)
        stored = reader.chunks([chunk_id for chunk_id, _ in found])
    assert counts.documents == documents
    assert len(found) == counts.chunks and len(stored) == counts.chunks


def test_a_failure_mid_ingest_loses_only_the_batch_being_embedded_and_the_next_run_resumes(
    tmp_path: Path, model_cache: Path
) -> None:
    from ingest import QuotaExceeded, RemoteOptions, make_embedder
    from tests.support.openai_sim import create_simulator
    from tests.support.openai_sim_state import SimulatorConfig

    from .conftest import ServerThread

    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(12):  # one passage each: a batch of 4 passages is 4 documents, staged in one transaction
        (folder / f"note-{n:02}.txt").write_text(f"Note {n} is about the river number {n * 7}.")
    index_dir = tmp_path / "ix"
    # The third request (the third batch) fails for good; the first two batches were staged before it.
    with ServerThread(create_simulator(SimulatorConfig(api_key="sk-t", faults=("ok", "ok", "quota")))) as sim:
        remote = RemoteOptions(base_url=f"{sim.url}/v1", api_key="sk-t", concurrency=1, backoff=0.01, timeout=5.0)
        embedder = make_embedder("openai/text-embedding-3-small", cache_dir=model_cache, remote=remote)
        index, chunking = open_index(index_dir, embedder, None)
        with pytest.raises(QuotaExceeded):
            ingest(index, embedder, Folders([folder]), chunking=chunking, batch_size=4)
        staged = _staged_rows(index_dir)
        assert sorted(staged) == [str(folder / f"note-{n:02}.txt") for n in range(8)], "two whole batches"
        assert all(chunks == 1 for chunks in staged.values()), "each staged document has its passage"
        assert LocalIndex.open(index_dir).stats().counts.documents == 0, "nothing is published before the run ends"
        resumed = ingest(index, embedder, Folders([folder]), chunking=chunking, batch_size=4)
        index.close()
        embedder.close()
    assert (resumed.ingested, resumed.chunks, resumed.embedded) == (12, 12, 4), "only the lost batch is embedded"
    assert LocalIndex.open(index_dir).stats().counts.chunks == 12 and _staged_rows(index_dir) == {}


def _staged_rows(index_dir: Path) -> dict[str, int]:
    """Each staged document's path and its staged passages."""
    with sqlite3.connect(index_dir / "chunks.sqlite") as conn:
        rows = conn.execute(
            "SELECT d.path, count(c.ordinal) FROM staged_documents d LEFT JOIN staged_chunks c ON c.path = d.path "
            "GROUP BY d.path"
        ).fetchall()
        orphans = conn.execute(
            "SELECT count(*) FROM staged_chunks WHERE path NOT IN (SELECT path FROM staged_documents)"
        )
        assert orphans.fetchone()[0] == 0, "no passage is staged without its document"
    return {path: count for path, count in rows}


def test_killed_while_publishing_to_the_fulltext_index_leaves_a_consistent_lexical_search(
    tmp_path: Path, model_cache: Path
) -> None:
    """kill -9 after the full-text index took a publish's passages but before the catalog committed
    them, and after the catalog committed but before the full-text index let the removed ones go."""
    from tests.support.openai_sim import create_simulator

    from .conftest import ServerThread

    folder = tmp_path / "notes"
    folder.mkdir()
    index_dir = tmp_path / "ix"
    with ServerThread(create_simulator()) as sim:
        command = [
            *("ingest", str(folder), "--index", str(index_dir), "--chunk-tokens", "64"),
            *("--embedding-model", "openai/text-embedding-3-small", "--base-url", f"{sim.url}/v1"),
        ]
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "SEMSEARCH_CACHE_DIR": str(model_cache)}
        caught: set[str] = set()
        for attempt in range(12):  # every run replaces every passage: adds and deletes in each publish
            for n in range(20):
                lines = (f"Zebra {attempt} note {n} line {i}." for i in range(100))
                (folder / f"note-{n:02}.txt").write_text(" ".join(lines))
            if attempt == 0:
                assert _cli(command, env).wait() == 0, "a published state to start from"
                continue
            after_commit = attempt % 2 == 0
            if _kill_while_changing_fulltext(_cli(command, env), index_dir, after_commit=after_commit):
                caught.add(after_commit)
                _assert_lexical_consistent(index_dir)
            if caught == {True, False}:
                break
        assert caught == {True, False}, "runs are caught in both windows"
        assert _cli(command, env).wait() == 0, "the next ingest runs"
    _assert_lexical_consistent(index_dir)


def _kill_while_changing_fulltext(process: subprocess.Popen[bytes], index_dir: Path, *, after_commit: bool) -> bool:
    """SIGKILL the run once its full-text index took the new passages (`after_commit`: once the catalog
    committed too), before the full-text index records the generation; whether it was caught so."""
    from indexes.fulltext import FOLDER, MARKER

    marker, meta = index_dir / FOLDER / MARKER, index_dir / FOLDER / "meta.json"
    generation, stamp = _generation(index_dir), meta.stat().st_mtime_ns
    try:
        while process.poll() is None and marker.exists():
            time.sleep(0.0005)
        while process.poll() is None and (
            _generation(index_dir) == generation if after_commit else meta.stat().st_mtime_ns == stamp
        ):
            time.sleep(0.0005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    committed = _generation(index_dir) != generation
    return not marker.exists() and committed == after_commit and meta.stat().st_mtime_ns != stamp


def _generation(index_dir: Path) -> int:
    with sqlite3.connect(index_dir / "chunks.sqlite", timeout=5) as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def _assert_lexical_consistent(index_dir: Path) -> None:
    """A lexical search finds exactly the catalog's passages, and the engine holds no other (after a repair)."""
    from indexes.fulltext import chunk_ids

    for index in (LocalIndex.open(index_dir), LocalIndex.open(index_dir)):  # repaired on open; a second open agrees
        with index.read() as reader:
            every = {c.chunk_id for c in reader.all_chunks()}
            assert len(every) >= 30 and {cid for cid, _ in reader.lexical(["zebra"], 100_000)} == every
            searcher = index.fulltext.searcher(reader.counts().generation)
            assert searcher is not None and chunk_ids(searcher) == every, "nothing else left in the engine"
