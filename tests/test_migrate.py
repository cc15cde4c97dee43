"""`semsearch migrate`: an index copied into the other store, nothing embedded, the same answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexes import IndexExists, open_store, store_exists
from indexes.manifest import read_manifest
from indexes.migrate import copy_index
from search import SearchService

from .support.milvus import require_pymilvus

QUERIES = [
    "who invented the printing press",
    "how do plants turn light into energy",
    "TCP congestion window after packet loss",
    "how does evaporation and rain move water around the planet",
    "how does the bishop move in chess",
    "brewing coffee with a French press",
    "Roman engineers carried water into cities",
    "what is a vector database",
    "lentils simmered with onions",
    "mechanical clocks and pendulums",
]


@pytest.fixture
def local_copy(tmp_path: Path, sample_index: Path) -> Path:
    """A private copy of the sample index (the session's one is shared read-only)."""
    shutil.copytree(sample_index, tmp_path / "ix")
    return tmp_path / "ix"


def _dense(folder: Path, embedder, query: str) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    index = open_store(folder)
    try:
        with index.read() as reader:
            hits = reader.dense(embedder.embed_query(query), 10)
            chunks = reader.chunks([i for i, _ in hits])
        return [(chunks[i].path, chunks[i].chunk.ordinal) for i, _ in hits]
    finally:
        index.close()


def _contents(folder: Path) -> list[tuple[str, str, list[tuple[int, str, str]], np.ndarray]]:
    index = open_store(folder)
    try:
        with index.read() as reader:
            exported = sorted(reader.export(), key=lambda item: item[0].path)
    finally:
        index.close()
    return [
        (
            document.path,
            document.content_hash,
            [(c.chunk.ordinal, c.text_hash, c.chunk.text) for c in chunks],
            np.frombuffer(b"".join(c.vector for c in chunks), dtype="<f4"),
        )
        for document, chunks in exported
    ]


def test_migrate_to_milvus_lite_and_back_copies_everything_and_embeds_nothing(run, local_copy: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    require_pymilvus()
    before = _contents(local_copy)
    result = run("migrate", "--index", str(local_copy), "--to", "milvus", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    lite = Path(report["index"])
    assert lite == local_copy.with_name("ix-milvus") and read_manifest(lite).store == "milvus"
    assert report["documents"] == len(before) and report["chunks"] == sum(len(d[2]) for d in before)
    copied = _contents(lite)
    assert [d[:3] for d in copied] == [d[:3] for d in before]
    for (_, _, _, ours), (_, _, _, theirs) in zip(copied, before, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)  # the vectors themselves, not re-embedded
    assert [d[:3] for d in _contents(local_copy)] == [d[:3] for d in before], "the source is only read"
    for query in QUERIES:  # both flat (exact): the same passages in the same order
        assert _dense(lite, embedder, query) == _dense(local_copy, embedder, query), query

    back = run("migrate", "--index", str(lite), "--to", "local", "--into", str(local_copy.with_name("home")))
    assert back.exit_code == 0, back.output
    assert [d[:3] for d in _contents(local_copy.with_name("home"))] == [d[:3] for d in before]


def test_searches_of_the_copy_find_what_the_original_finds(tmp_path: Path, local_copy: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    require_pymilvus()
    source = open_store(local_copy)
    try:
        copy_index(source, tmp_path / "lite", "milvus")
    finally:
        source.close()
    for folder in (local_copy, tmp_path / "lite"):
        service = SearchService(open_store(folder), embedder, owns_embedder=False)
        try:
            for mode in ("dense", "lexical", "hybrid"):
                first = service.search("who invented the printing press", 1, mode)[0]
                assert first.path.endswith("printing-press.html"), (folder, mode)
        finally:
            service.close()


def test_migrate_refuses_an_existing_target_and_the_same_store(run, tmp_path: Path, local_copy: Path) -> None:  # type: ignore[no-untyped-def]
    same = run("migrate", "--index", str(local_copy), "--to", "local", "--into", str(tmp_path / "x"))
    assert same.exit_code == 2 and "already in the local store" in same.output
    assert not (tmp_path / "x").exists()
    taken = run("migrate", "--index", str(local_copy), "--to", "milvus", "--into", str(local_copy))
    assert taken.exit_code != 0 and "already exists" in taken.output
    source = open_store(local_copy)
    try:
        with pytest.raises(IndexExists):
            copy_index(source, local_copy, "milvus")
    finally:
        source.close()
    assert store_exists(local_copy) and read_manifest(local_copy).store == "local"


def test_a_copy_that_fails_leaves_its_empty_folder_empty_and_can_be_tried_again(  # type: ignore[no-untyped-def]
    run, tmp_path: Path, local_copy: Path
) -> None:
    require_pymilvus()
    target = tmp_path / "empty"
    target.mkdir()
    (tmp_path / "blocker").mkdir()
    bad_uri = str(tmp_path / "blocker" / "sub" / "x.db")  # its folder does not exist: Milvus Lite cannot open it
    failed = run(
        "migrate", "--index", str(local_copy), "--to", "milvus", "--into", str(target), "--milvus-uri", bad_uri
    )
    assert failed.exit_code != 0 and "does not exist" in failed.output
    assert list(target.iterdir()) == [], "nothing left behind"
    again = run("migrate", "--index", str(local_copy), "--to", "milvus", "--into", str(target))
    assert again.exit_code == 0, again.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("someone's file")
    refused = run("migrate", "--index", str(local_copy), "--to", "milvus", "--into", str(tmp_path / "full"))
    assert refused.exit_code != 0 and "not empty" in refused.output
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def test_uploads_and_vector_store_records_go_with_the_copy(run, tmp_path: Path, model_cache: Path) -> None:  # type: ignore[no-untyped-def]
    """A server's uploads live in the index folder: the copy gets its own, so the original can be deleted."""
    import httpx

    from search import Settings
    from search.http import create_app

    from .conftest import DATA, ServerThread

    require_pymilvus()
    source = tmp_path / "team"
    assert run("ingest", str(DATA / "sample" / "photosynthesis.md"), "--index", str(source)).exit_code == 0
    with (
        ServerThread(create_app(Settings(index_dir=source, cache_dir=model_cache))) as up,
        httpx.Client(base_url=up.url, timeout=60) as http,
    ):
        files = [("files", ("zebra.md", b"# Zebras\n\nZebras have black and white stripes."))]
        assert http.post("/documents", files=files).status_code == 201
    copied = run("migrate", "--index", str(source), "--to", "milvus", "--into", str(tmp_path / "copy"))
    assert copied.exit_code == 0, copied.output
    shutil.rmtree(source)
    with (
        ServerThread(create_app(Settings(index_dir=tmp_path / "copy", cache_dir=model_cache))) as up,
        httpx.Client(base_url=up.url, timeout=60) as http,
    ):
        zebra = next(d for d in http.get("/documents").json()["data"] if d["path"].endswith("zebra.md"))
        assert zebra["path"].startswith(str((tmp_path / "copy").resolve()))
        original = http.get(f"/documents/{zebra['id']}/file")
        assert original.status_code == 200 and b"black and white stripes" in original.content
