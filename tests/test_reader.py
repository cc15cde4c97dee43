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
    LocalIndex,
    LocalWriter,
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
def index(tmp_path: Path) -> LocalIndex:
    index = LocalIndex.create(tmp_path / "ix", Manifest("test/model", DIM))
    with LocalWriter(index) as writer:
        for n, record in enumerate(RECORDS):
            writer.stage(record, [chunk(0, f"{record.title} says hello"), chunk(1, f"passage {n} about rivers")])
        writer.publish()
    return index


def test_documents_come_back_as_records_in_id_order(index: LocalIndex) -> None:
    with index.read() as reader:
        found = reader.documents()
    assert [d.record for d in found] == RECORDS
    assert all(isinstance(d, StoredDocument) and d.chunks == 2 and d.tokens > 0 for d in found)
    assert [d.id for d in found] == sorted(d.id for d in found)
    assert all(d.ingested_at is not None for d in found)


def test_documents_page_and_filter(index: LocalIndex) -> None:
    with index.read() as reader:
        first, *rest = reader.documents()
        assert [d.record.path for d in reader.documents(after=first.id)] == ["/docs/b.pdf", "/notes/c.txt"]
        assert [d.record.path for d in reader.documents(limit=1)] == ["/docs/a.md"]
        in_docs = all_of([Comparison("path", "glob", "/docs/**"), Comparison("team", "ne", "x")])
        assert [d.record.path for d in reader.documents(in_docs)] == ["/docs/b.pdf"]


def test_one_document_by_id_or_path(index: LocalIndex) -> None:
    with index.read() as reader:
        by_path = reader.document_at("/docs/b.pdf")
        assert by_path is not None and by_path.record == RECORDS[1]
        assert reader.document(by_path.id) == by_path
        assert reader.document_at("/nowhere") is None
        assert reader.document(10_000) is None


def test_counts_are_a_record(index: LocalIndex) -> None:
    with index.read() as reader:
        counts = reader.counts()
    assert isinstance(counts, CatalogCounts)
    assert (counts.documents, counts.chunks, counts.generation) == (3, 6, 1)
    assert index.stats().counts.documents == 3


def test_allowed_chunks_take_a_filter(index: LocalIndex) -> None:
    with index.read() as reader:
        pdf = reader.document_at("/docs/b.pdf")
        allowed = reader.allowed_chunks(Comparison("type", "eq", "pdf"))
        assert pdf is not None and set(reader.documents_of(allowed.tolist()).values()) == {pdf.id}


def test_lexical_takes_words_and_quotes_them(index: LocalIndex) -> None:
    with index.read() as reader:
        found = reader.lexical(["rivers"], 10)
        assert len(found) == 3
        assert reader.lexical(['"hello', "NEAR(", "*"], 10) != [], "words are never FTS5 syntax"
        filtered = reader.lexical(["rivers", "hello"], 10, where=Comparison("path", "prefix", "/notes/"))
        assert {reader.chunks([cid])[cid].path for cid, _ in filtered} == {"/notes/c.txt"}
        marked = reader.snippets(["hello"], [cid for cid, _ in reader.lexical(["hello"], 10)])
        assert marked and all("<mark>hello</mark>" in text for text in marked.values())
        assert reader.lexical([], 10) == [] and reader.snippets([], [1]) == {}


def test_lexical_stems_and_folds_accents(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        writer.stage(DocumentRecord("/menu.md", "hm", "markdown", "Menu"), [chunk(0, "Crème brûlée at the Café")])
        writer.publish()
    with index.read() as reader:
        menu = reader.document_at("/menu.md")
        assert menu is not None
        for words in (["cafe"], ["CAFÉ"], ["creme", "brulee"]):
            found = reader.lexical(words, 10)
            assert set(reader.documents_of([cid for cid, _ in found]).values()) == {menu.id}, words
        assert len(reader.lexical(["river"], 10)) == 3, "a word finds its other forms (rivers)"
        marked = reader.snippets(["cafe"], [cid for cid, _ in reader.lexical(["cafe"], 1)])
        assert list(marked.values()) == ["Crème brûlée at the <mark>Café</mark>"]


def test_lexical_filters_apply_inside_the_search(index: LocalIndex) -> None:
    with LocalWriter(index) as writer:
        for n in range(40):  # documents of team "z" that outrank every other for the word
            text = "bridge " * 5 + f"number {n}"
            writer.stage(
                DocumentRecord(f"/z/{n}.md", f"z{n}", "markdown", "Bridge", 1, 1.0, None, {"team": "z"}),
                [chunk(0, text)],
            )
        writer.publish()
    with index.read() as reader:
        everything = dict(reader.lexical(["bridge", "hello"], 100))
        for where, k, expected in (
            (Comparison("team", "eq", "x"), 10, 1),  # 1 matching chunk: fewer than k, none left out
            (Comparison("team", "eq", "z"), 10, 10),
            (Comparison("team", "ne", "z"), 10, 3),
            (Comparison("team", "eq", "nobody"), 10, 0),
        ):
            found = reader.lexical(["bridge", "hello"], k, where=where)
            assert len(found) == expected, where
            paths = {reader.chunks([cid])[cid].path for cid, _ in found}
            assert all(reader.document_at(p) is not None for p in paths)
            assert all(score == everything[cid] for cid, score in found), "a filter adds nothing to a score"
        assert {
            reader.chunks([cid])[cid].path
            for cid, _ in reader.lexical(["hello"], 10, where=Comparison("team", "eq", "x"))
        } == {"/docs/a.md"}


def test_snippets_cut_long_passages_around_the_words(index: LocalIndex) -> None:
    text = (
        " ".join(f"filler{i}" for i in range(80)) + " the lighthouse keeper " + " ".join(f"tail{i}" for i in range(80))
    )
    with LocalWriter(index) as writer:
        writer.stage(DocumentRecord("/long.md", "hl", "markdown", "Long"), [chunk(0, text)])
        writer.publish()
    with index.read() as reader:
        (cid, _), *_ = reader.lexical(["lighthouse"], 1)
        marked = reader.snippets(["lighthouse", "keeper"], [cid])[cid]
    assert "<mark>lighthouse</mark> <mark>keeper</mark>" in marked
    assert marked.startswith("…") and marked.endswith("…")
    plain = marked.replace("<mark>", "").replace("</mark>", "").strip("…")
    assert len(plain.split()) == 32 and plain in text, "32 words of the passage, as FTS5's snippet() gave"
