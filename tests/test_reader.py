"""The catalog through the Reader's typed methods: documents, counts, filters and lexical words."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from indexes import (
    CatalogCounts,
    Chunk,
    ChunkRecord,
    Comparison,
    DocumentRecord,
    Index,
    IndexWriter,
    Manifest,
    StoredDocument,
    all_of,
)

DIM = 4


def chunk(ordinal: int, text: str) -> ChunkRecord:
    vector = np.ones(DIM, dtype="<f4") / 2
    return ChunkRecord(
        Chunk(ordinal, text, len(text.split())), hashlib.sha256(text.encode()).hexdigest(), vector.tobytes()
    )


RECORDS = [
    DocumentRecord("/docs/a.md", "ha", "markdown", "Alpha", 10, 1.5, None, {"team": "x"}),
    DocumentRecord("/docs/b.pdf", "hb", "pdf", "Beta", 20, 2.5, 3, {"team": "y"}),
    DocumentRecord("/notes/c.txt", "hc", "text", "Gamma", 30, 3.5, None, {}),
]


@pytest.fixture
def index(tmp_path: Path) -> Index:
    index = Index.create(tmp_path / "ix", Manifest("test/model", DIM))
    with IndexWriter(index) as writer:
        for n, record in enumerate(RECORDS):
            writer.stage(record, [chunk(0, f"{record.title} says hello"), chunk(1, f"passage {n} about rivers")])
        writer.publish()
    return index


def test_documents_come_back_as_records_in_id_order(index: Index) -> None:
    with index.read() as reader:
        found = reader.documents()
    assert [d.record for d in found] == RECORDS
    assert all(isinstance(d, StoredDocument) and d.chunks == 2 and d.tokens > 0 for d in found)
    assert [d.id for d in found] == sorted(d.id for d in found)
    assert all(d.ingested_at is not None for d in found)


def test_documents_page_and_filter(index: Index) -> None:
    with index.read() as reader:
        first, *rest = reader.documents()
        assert [d.record.path for d in reader.documents(after=first.id)] == ["/docs/b.pdf", "/notes/c.txt"]
        assert [d.record.path for d in reader.documents(limit=1)] == ["/docs/a.md"]
        in_docs = all_of([Comparison("path", "glob", "/docs/**"), Comparison("team", "ne", "x")])
        assert [d.record.path for d in reader.documents(in_docs)] == ["/docs/b.pdf"]


def test_one_document_by_id_or_path(index: Index) -> None:
    with index.read() as reader:
        by_path = reader.document_at("/docs/b.pdf")
        assert by_path is not None and by_path.record == RECORDS[1]
        assert reader.document(by_path.id) == by_path
        assert reader.document_at("/nowhere") is None
        assert reader.document(10_000) is None


def test_counts_are_a_record(index: Index) -> None:
    with index.read() as reader:
        counts = reader.counts()
    assert isinstance(counts, CatalogCounts)
    assert (counts.documents, counts.chunks, counts.generation) == (3, 6, 1)
    assert index.stats().counts.documents == 3


def test_allowed_chunks_take_a_filter(index: Index) -> None:
    with index.read() as reader:
        pdf = reader.document_at("/docs/b.pdf")
        allowed = reader.allowed_chunks(Comparison("type", "eq", "pdf"))
        assert pdf is not None and set(reader.documents_of(allowed.tolist()).values()) == {pdf.id}


def test_lexical_takes_words_and_quotes_them(index: Index) -> None:
    with index.read() as reader:
        found = reader.lexical(["rivers"], 10)
        assert len(found) == 3
        assert reader.lexical(['"hello', "NEAR(", "*"], 10) != [], "words are never FTS5 syntax"
        filtered = reader.lexical(["rivers", "hello"], 10, where=Comparison("path", "prefix", "/notes/"))
        assert {reader.chunks([cid])[cid].path for cid, _ in filtered} == {"/notes/c.txt"}
        marked = reader.snippets(["hello"], [cid for cid, _ in reader.lexical(["hello"], 10)])
        assert marked and all("<mark>hello</mark>" in text for text in marked.values())
        assert reader.lexical([], 10) == [] and reader.snippets([], [1]) == {}
