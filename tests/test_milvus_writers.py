"""The Milvus writer's safety nets, on Milvus Lite: a second writer that fell behind, a staged document short of
passages, retirements that keep the published row short."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from indexes import IndexBusy, open_store
from indexes.manifest import read_manifest, write_manifest
from indexes.milvus.meta import read_published
from tests.support.milvus import require_pymilvus

from .test_milvus_store import _create, _document, _rows


@pytest.fixture(autouse=True)
def _pymilvus() -> None:
    require_pymilvus()


def _paths(index: Any) -> list[str]:
    with index.read() as reader:
        return sorted(d.record.path for d in reader.documents())


def test_a_second_writer_that_fell_behind_is_refused_and_loses_nothing(tmp_path: Path) -> None:
    """Two folders naming the same collections (a copied folder) share no lock: the writer that finds the index
    published since it began is refused before it writes, instead of reusing the generation and the ids."""
    first = _create(tmp_path / "a")
    second_folder = tmp_path / "b"
    second_folder.mkdir()
    manifest = read_manifest(tmp_path / "a")
    write_manifest(
        second_folder, manifest.__class__(**{**manifest.__dict__, "milvus_uri": str(tmp_path / "a" / "milvus.db")})
    )
    second = open_store(second_folder)
    try:
        with first.writer() as a, second.writer() as b:
            a.stage_many([_document("x.md")])
            a.publish()
            b.stage_many([_document("y.md")])
            with pytest.raises(IndexBusy, match="another writer published generation 1"):
                b.publish()
        assert _paths(first) == ["x.md"]
        assert read_published(first.connection, first.names).generation == 1
    finally:
        second.close()
        first.close()


def test_a_staged_document_short_of_passages_is_not_published(tmp_path: Path) -> None:
    """A crash can leave a staged document whose passages are not all there: publish leaves it out (the next ingest
    takes it again) instead of making a document with passages missing visible."""
    index = _create(tmp_path / "ix")
    try:
        with index.writer() as writer:
            writer.stage_many([_document("whole.md"), _document("short.md")])
            index.connection.call("delete", index.names.staged, filter='path == "short.md" and ordinal == 1')
            result = writer.publish()
        assert result.documents_written == 1 and _paths(index) == ["whole.md"]
        with index.read() as reader:
            counts = reader.counts()
            assert counts.documents == 1 and counts.chunks == len(list(reader.all_chunks()))
            assert {c.path for c in reader.all_chunks()} == {"whole.md"}
        assert _rows(index, "staged") == 0 and _rows(index, "chunks", 'path == "short.md"') == 0
        with index.writer() as writer:
            assert "short.md" not in writer.known_documents() and writer.staged_documents() == {}
    finally:
        index.close()


def test_a_document_edited_again_and_again_keeps_one_retirement_and_a_short_row(tmp_path: Path) -> None:
    index = _create(tmp_path / "ix")
    try:
        with index.writer() as writer:
            writer.stage_many([_document(f"d{i}.md") for i in range(30)])
            writer.publish()
            with index.read() as reader:
                ids = [d.id for d in reader.documents()]
            for n in range(20):
                writer.set_attributes(ids[0], {"round": n})
            writer.stage_many([_document(f"d{i}.md", version=2) for i in range(30)])  # all 30 replaced at once
            writer.publish()
        published = read_published(index.connection, index.names)
        retired = [i for _, group in published.retired for i in group]
        assert sorted(retired) == sorted(ids), "each document once, at its latest retirement"
        assert len(json.dumps(published.as_json()["retired"])) < 40, "consecutive ids are kept as one run"
        with index.read() as reader:
            assert len(reader.documents()) == 30 and all(d.id not in ids for d in reader.documents())
            assert {c.chunk.text.split()[2] for c in reader.all_chunks()} == {"2"}, "only the new versions show"
    finally:
        index.close()
    shutil.rmtree(tmp_path / "ix")


def test_a_milvus_uri_from_the_environment_leaves_an_index_on_its_own_lite_file(tmp_path: Path) -> None:
    """SEMSEARCH_MILVUS_URI (a server's new address) must not point an index kept in a Lite file elsewhere."""
    from indexes import MilvusOptions

    index = _create(tmp_path / "ix")
    with index.writer() as writer:
        writer.stage_many([_document("kept.md")])
        writer.publish()
    index.close()
    other = tmp_path / "elsewhere.db"
    reopened = open_store(tmp_path / "ix", milvus=MilvusOptions(uri=str(other)))
    try:
        assert _paths(reopened) == ["kept.md"] and not other.exists()
    finally:
        reopened.close()


def test_a_milvus_that_cannot_be_reached_leaves_no_index_folder(tmp_path: Path) -> None:
    from indexes import IndexStoreError, Manifest, MilvusOptions, create_store

    manifest = Manifest("test/model", 8, store="milvus", format_version=3)
    with pytest.raises(IndexStoreError, match="does not exist"):
        create_store(tmp_path / "ix", manifest, milvus=MilvusOptions(uri=str(tmp_path / "missing" / "x.db")))
    assert not (tmp_path / "ix").exists()
