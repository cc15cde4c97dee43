"""MilvusReader against the local store: the same documents, written to both, read back the same.

Passages are compared by (path, ordinal), documents by path: each store allocates its own ids. Milvus Lite scans
every vector (FLAT) as the local store's small flat segments do, so dense results are equal, scores included.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes import (
    Chunk,
    ChunkRecord,
    Comparison,
    Compound,
    DocumentRecord,
    Filter,
    Index,
    Manifest,
    Reader,
    StoredChunk,
    StoredDocument,
    create_store,
)
from indexes.facets import count_facets, read_facets
from search import parse_filters
from tests.support.filters import TOPICS, random_document, random_filter, random_query
from tests.support.milvus import require_pymilvus

DIMENSION, DOCUMENTS = 8, 40
Key = tuple[str, int]  # a passage by (document path, ordinal): each store has its own ids


def _corpus(seed: int = 14) -> list[tuple[DocumentRecord, list[ChunkRecord]]]:
    """Random documents (tests/support/filters.py) with their passages and random unit vectors."""
    rng = np.random.default_rng(seed)
    corpus = []
    for i in range(DOCUMENTS):
        record, texts = random_document(rng, i)
        chunks = []
        for ordinal, text in enumerate(texts):
            vector = rng.normal(size=DIMENSION).astype(np.float32)
            vector /= np.linalg.norm(vector)
            chunk = Chunk(ordinal, text, len(text.split()), f"Part {ordinal}", ordinal + 1 if i % 2 else None)
            digest = hashlib.sha256(text.encode()).hexdigest()
            chunks.append(ChunkRecord(chunk, digest, vector.astype("<f4").tobytes()))
        corpus.append((record, chunks))
    return corpus


def _fill(index: Index, corpus: list[tuple[DocumentRecord, list[ChunkRecord]]]) -> Index:
    with index.writer() as writer:
        writer.stage_many(corpus)
        writer.publish()
    return index


@pytest.fixture(scope="module")
def corpus() -> list[tuple[DocumentRecord, list[ChunkRecord]]]:
    return _corpus()


class _Rows:
    """A Milvus Lite index written row by row with schema.py's converters (rows born when a test says), read by
    MilvusReader at the published state a test gives."""

    def __init__(self, folder: Path) -> None:
        from indexes.milvus.connection import connect
        from indexes.milvus.schema import CollectionNames, create_collections, new_prefix

        folder.mkdir(parents=True)
        self.manifest = Manifest("test/model", DIMENSION, store="milvus")
        self.connection = connect(str(folder / "milvus.db"))
        self.names = CollectionNames(new_prefix(folder))
        self.bm25 = self.connection.supports_bm25
        create_collections(self.connection, self.names, DIMENSION, bm25=self.bm25)
        self.next_document, self.next_chunk, self.tokens = 1, 1, 0

    def write(self, corpus: list[tuple[DocumentRecord, list[ChunkRecord]]], born: int) -> list[int]:
        """The documents' rows, born in generation `born`, with the next ids; their document ids."""
        from indexes.milvus.schema import chunk_row, document_row

        chunks, documents, ids = [], [], []
        for record, records in corpus:
            document_id, tokens = self.next_document, sum(r.chunk.tokens for r in records)
            documents.append(document_row(document_id, born, record, len(records), tokens, time.time()))
            for r in records:
                row = chunk_row(
                    self.next_chunk, document_id, born, record, r.chunk, r.text_hash, r.vector, bm25=self.bm25
                )
                chunks.append(row)
                self.next_chunk += 1
            ids.append(document_id)
            self.next_document += 1
        self.connection.call("insert", self.names.documents, documents)
        self.connection.call("insert", self.names.chunks, chunks)
        return ids

    def reader(self, published: Any) -> Reader:
        from indexes.milvus.meta import read_published, write_published
        from indexes.milvus.reader import MilvusReader

        write_published(self.connection, self.names, published)
        return MilvusReader(self.connection, self.names, read_published(self.connection, self.names), self.manifest)

    def published(self, generation: int, corpus: list[tuple[DocumentRecord, list[ChunkRecord]]], **more: Any) -> Any:
        """The published row of a snapshot holding `corpus`."""
        from indexes.milvus.meta import Published

        chunks, tokens = sum(len(c) for _, c in corpus), sum(r.chunk.tokens for _, c in corpus for r in c)
        return Published(
            generation,
            time.time(),
            next_chunk_id=self.next_chunk,
            next_document_id=self.next_document,
            documents=len(corpus),
            chunks=chunks,
            tokens=tokens,
            **more,
        )

    def close(self) -> None:
        self.connection.close()


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, corpus: list[tuple[DocumentRecord, list[ChunkRecord]]]
) -> Iterator[tuple[Index, Any]]:
    """The corpus in a local index and in a Milvus Lite one, each through its store's writer (built once: Lite is
    slow to write)."""
    require_pymilvus()
    folder = tmp_path_factory.mktemp("stores")
    local = _fill(create_store(folder / "local", Manifest("test/model", DIMENSION)), corpus)
    milvus = _fill(create_store(folder / "milvus", Manifest("test/model", DIMENSION, store="milvus")), corpus)
    try:
        yield local, milvus
    finally:
        local.close()
        milvus.close()


def _key(stored: StoredChunk) -> Key:
    return stored.path, stored.chunk.ordinal


def _keys(reader: Reader, hits: list[tuple[int, float]]) -> list[tuple[Key, float]]:
    found = reader.chunks([cid for cid, _ in hits])
    return [(_key(found[cid]), score) for cid, score in hits]


def _without_ids(stored: StoredChunk) -> tuple[str, str, Chunk]:
    return stored.path, stored.title, stored.chunk


def _place(passage: tuple[str, str, Chunk]) -> Key:
    return passage[0], passage[2].ordinal


def _document(stored: StoredDocument) -> tuple[DocumentRecord, int, int]:
    return stored.record, stored.chunks, stored.tokens


def _path(document: tuple[DocumentRecord, int, int]) -> str:
    return document[0].path


def _query(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_passages_and_documents_read_the_same(stores: tuple[Index, Any]) -> None:
    local, milvus = stores
    with local.read() as ours, milvus.read() as theirs:
        mine, other = list(ours.all_chunks()), list(theirs.all_chunks())
        assert sorted(map(_without_ids, other), key=_place) == sorted(map(_without_ids, mine), key=_place)
        assert [s.chunk_id for s in other] == sorted(s.chunk_id for s in other)
        by_key = {_key(s): s for s in other}
        assert theirs.chunks([s.chunk_id for s in other[::3]]) == {s.chunk_id: s for s in other[::3]}
        assert theirs.chunks([10**12]) == {}
        assert theirs.documents_of([s.chunk_id for s in other]) == {s.chunk_id: s.document_id for s in other}
        for stored in mine[::5]:
            passages = theirs.passages_of(stored.path)
            assert [_without_ids(p) for p in passages] == [_without_ids(p) for p in ours.passages_of(stored.path)]
        assert theirs.passages_of("/no/such/path") == []
        ids = [s.chunk_id for s in mine[:7]]
        wanted = [by_key[_key(s)].chunk_id for s in mine[:7]]
        np.testing.assert_array_equal(theirs.vectors(wanted[::-1]), ours.vectors(ids[::-1]))
        assert theirs.vectors([]).shape == (0, DIMENSION)
        documents = theirs.documents()
        assert sorted(map(_document, documents), key=_path) == sorted(map(_document, ours.documents()), key=_path)
        assert [d.id for d in documents] == sorted(d.id for d in documents)
        for d in documents[::6]:
            assert theirs.document(d.id) == d
            assert theirs.document_at(d.record.path) == d
        assert theirs.document(10**12) is None and theirs.document_at("/nowhere") is None
        assert replace(theirs.counts(), generation=0, last_ingest=None) == replace(
            ours.counts(), generation=0, last_ingest=None
        )
        assert theirs.generation() >= 1


def test_documents_come_in_pages_by_id(stores: tuple[Index, Any]) -> None:
    local, milvus = stores
    with local.read() as ours, milvus.read() as theirs:
        for f in _filters():
            everything = theirs.documents(f)
            assert sorted(map(_document, everything), key=_path) == sorted(map(_document, ours.documents(f)), key=_path)
            pages: list[StoredDocument] = []
            while page := theirs.documents(f, after=pages[-1].id if pages else 0, limit=7):
                assert len(page) <= 7
                pages += page
            assert pages == everything
        assert len(theirs.documents()) > 7 and theirs.documents(limit=0) == []


def test_facets_count_the_same(stores: tuple[Index, Any]) -> None:
    local, milvus = stores
    with local.read() as ours, milvus.read() as theirs:
        for limit in (50, 2, 1):
            assert theirs.facets(limit) == ours.facets(limit)


def test_facets_counted_in_python_equal_the_catalogs(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    records = [random_document(rng, i)[0] for i in range(120)]
    records += [
        DocumentRecord("/odd/1.md", "x", "markdown", "t", attributes={"n": 1, "f": 1.0, "z": None, "l": [1]}),
        DocumentRecord("/odd/2.md", "y", "", "t", attributes={"n": True, "f": 1.5, "é": "ü", "o": {"a": 1}}),
    ]
    index = create_store(tmp_path / "ix", Manifest("test/model", DIMENSION))
    try:
        _fill(index, [(r, []) for r in records])
        pairs = [(r.type, r.attributes) for r in records]
        for limit in (50, 3, 1):
            assert count_facets(pairs, limit) == read_facets(index.catalog(), limit)  # type: ignore[attr-defined]
    finally:
        index.close()


def _filters() -> list[Filter | None]:
    rng = np.random.default_rng(3)
    named: list[Filter | None] = [
        None,
        Comparison("path", "glob", "/data/**/notes/*"),
        Comparison("path", "glob", "**/*.pdf"),
        Comparison("path", "prefix", "/data/b/"),
        Comparison("tags", "ne", "red"),  # documents without tags match
        Comparison("nope", "ne", "x"),  # no document has it: every one matches
        Comparison("team", "in", ("a", "c")),
        Compound("and", (Comparison("public", "eq", True), Comparison("score", "lt", 0.6))),
        Comparison("team", "eq", "nobody"),
    ]
    return named + [parse_filters(random_filter(rng)) for _ in range(12)]


def test_dense_results_equal_the_local_flat_index(stores: tuple[Index, Any]) -> None:
    local, milvus = stores
    with local.read() as ours, milvus.read() as theirs:
        sizes = []
        for n, where in enumerate(_filters()):
            query = _query(n)
            expected, found = _keys(ours, ours.dense(query, 10, where)), _keys(theirs, theirs.dense(query, 10, where))
            assert [k for k, _ in found] == [k for k, _ in expected], where
            np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=0, atol=1e-5)
            sizes.append(len({path for (path, _), _ in _reachable(theirs, query, where)}))
        assert theirs.dense(_query(0), 0) == []
    assert sum(0 < n < DOCUMENTS for n in sizes) > len(sizes) // 2  # most filters keep some documents, not all


def _reachable(reader: Reader, query: np.ndarray, where: Filter | None) -> list[tuple[Key, float]]:
    """Every passage a filtered dense search can reach."""
    return _keys(reader, reader.dense(query, 1000, where))


def test_lexical_finds_stemmed_forms_as_the_local_index_does(stores: tuple[Index, Any]) -> None:
    local, milvus = stores
    with local.read() as ours, milvus.read() as theirs:
        assert theirs.lexical_unavailable() is None
        for terms, where in [
            (["roses"], None),  # indexed as "rose"
            (["rose", "seedlings"], None),
            (["flooding"], None),
            (["thunder", "knead"], Comparison("tags", "ne", "red")),
            (["orbit", "crusts"], Comparison("path", "glob", "/data/*/20[12]?/**")),
        ]:
            found, expected = theirs.lexical(terms, 500, where), ours.lexical(terms, 500, where)
            assert found, terms
            assert {k for k, _ in _keys(theirs, found)} == {k for k, _ in _keys(ours, expected)}
            scores = [s for _, s in found]
            assert scores == sorted(scores, reverse=True) and scores[-1] > 0
            assert theirs.lexical_ceiling(terms) >= scores[0]
        assert theirs.lexical(["zzzz"], 10) == [] and theirs.lexical([], 10) == []
        assert theirs.lexical_ceiling([]) == 0.0
        rng = np.random.default_rng(5)
        for _ in range(20):
            terms = random_query(rng).split()
            found = theirs.lexical(terms, 10)
            assert found and theirs.lexical_ceiling(terms) >= found[0][1] > 0


def test_without_bm25_lexical_search_is_unavailable(stores: tuple[Index, Any]) -> None:
    """A Milvus server before 2.5 (its version as the connection reads it) has no BM25: no lexical hits, a reason."""
    from indexes.milvus.connection import Dialect, MilvusConnection, RetryPolicy, ServerVersion
    from indexes.milvus.reader import MilvusReader

    _, milvus = stores
    old = ServerVersion.parse("v2.3.5-lite", Dialect.SERVER)
    connection = MilvusConnection(milvus.connection.uri, milvus.connection.client, old, 10.0, RetryPolicy())
    with milvus.read() as current:
        reader = MilvusReader(connection, milvus.names, milvus.published(), milvus.manifest)
        assert reader.lexical(["roses"], 10) == [] and reader.lexical_ceiling(["roses"]) == 0.0
        assert "v2.3.5-lite" in str(reader.lexical_unavailable()) and current.lexical(["roses"], 10)
        assert reader.snippets(["roses"], [s.chunk_id for s in current.all_chunks()])  # snippets need no BM25


def test_a_glob_matching_more_documents_than_a_filter_can_list_is_refused(tmp_path: Path) -> None:
    """Past MAX_IDS documents a glob cannot become `document_id in [...]`: FilterTooBroad names it and the count."""
    require_pymilvus()
    from indexes.milvus.filter_expr import MAX_IDS, FilterTooBroad
    from indexes.milvus.schema import document_row

    rows = _Rows(tmp_path / "m")
    try:
        records = [DocumentRecord(f"/d/{i:05d}.md", "h", "markdown", "t") for i in range(MAX_IDS + 1)]
        documents = [document_row(i, 1, r, 0, 0, 1.0) for i, r in enumerate(records, 1)]
        rows.connection.call("insert", rows.names.documents, documents)
        reader = rows.reader(rows.published(1, [(r, []) for r in records]))
        with pytest.raises(FilterTooBroad, match=f"'/d/\\*.md' on path matches {MAX_IDS + 1} documents"):
            reader.dense(_query(0), 5, Comparison("path", "glob", "/d/*.md"))
        assert reader.dense(_query(0), 5, Comparison("path", "glob", "/d/1*.md")) == []  # 1 document, no passages
        assert [d.record.path for d in reader.documents(Comparison("path", "glob", "/d/1*.md"))] == ["/d/10000.md"]
    finally:
        rows.close()


def test_snippets_equal_the_local_ones(stores: tuple[Index, Any]) -> None:
    local, milvus = stores
    with local.read() as ours, milvus.read() as theirs:
        mine, other = list(ours.all_chunks()), list(theirs.all_chunks())
        for terms in (["roses", "floods"], list(TOPICS["bread"].split()[:3]), ["nothing"]):
            expected = {_key(s): text for s, text in _marked(ours, terms, mine)}
            assert {_key(s): text for s, text in _marked(theirs, terms, other)} == expected
        assert theirs.snippets(["rose"], []) == {}


def _marked(reader: Reader, terms: list[str], passages: list[StoredChunk]) -> list[tuple[StoredChunk, str]]:
    marked = reader.snippets(terms, [s.chunk_id for s in passages])
    return [(s, marked[s.chunk_id]) for s in passages if s.chunk_id in marked]


def test_an_export_round_trips(
    stores: tuple[Index, Any], corpus: list[tuple[DocumentRecord, list[ChunkRecord]]], tmp_path: Path
) -> None:
    local, milvus = stores
    with milvus.read() as reader:
        exported: list[Any] = list(reader.export())
    assert {r.path: (r, chunks) for r, chunks in exported} == {r.path: (r, chunks) for r, chunks in corpus}
    copy = _fill(create_store(tmp_path / "copy", Manifest("test/model", DIMENSION)), exported)
    try:
        with local.read() as ours, copy.read() as theirs:
            assert sorted(map(_document, theirs.documents()), key=_path) == sorted(
                map(_document, ours.documents()), key=_path
            )
            mine = sorted(ours.all_chunks(), key=_key)
            other = sorted(theirs.all_chunks(), key=_key)
            assert [_without_ids(s) for s in other] == [_without_ids(s) for s in mine]
            np.testing.assert_array_equal(
                theirs.vectors([s.chunk_id for s in other]), ours.vectors([s.chunk_id for s in mine])
            )
    finally:
        copy.close()


def test_a_snapshot_sees_only_its_generation(
    tmp_path: Path, corpus: list[tuple[DocumentRecord, list[ChunkRecord]]]
) -> None:
    """Rows born after the snapshot (a publish under way) and documents it retired are in no answer."""
    require_pymilvus()
    rows = _Rows(tmp_path / "m")
    try:
        first, later = corpus[:6], corpus[6:9]
        first_ids = rows.write(first, 1)
        later_ids = rows.write(later, 2)  # written, not yet committed at generation 1
        before = rows.reader(rows.published(1, first))
        _assert_holds(before, first, gone=later)
        retired = first_ids[1:3]
        now = first[:1] + first[3:] + later
        after = rows.reader(rows.published(2, now, retired=((2, tuple(retired)),)))
        _assert_holds(after, now, gone=first[1:3])
        assert {d.id for d in after.documents()} == set(first_ids) - set(retired) | set(later_ids)
        assert after.document(retired[0]) is None and before.document(retired[0]) is not None
        assert after.generation() == 2 and after.counts().documents == len(now)
    finally:
        rows.close()


def _assert_holds(reader: Reader, corpus: list[tuple[DocumentRecord, list[ChunkRecord]]], gone: Any) -> None:
    paths, hidden = {r.path for r, _ in corpus}, [r.path for r, _ in gone]
    passages = list(reader.all_chunks())
    assert {s.path for s in passages} == paths and len(passages) == sum(len(c) for _, c in corpus)
    assert {d.record.path for d in reader.documents()} == paths
    assert {r.path for r, _ in reader.export()} == paths  # type: ignore[attr-defined]
    assert reader.facets().documents == len(paths)
    for path in hidden:
        assert reader.document_at(path) is None and reader.passages_of(path) == []
    everything = [s.chunk_id for s in passages]
    dense = reader.dense(_query(1), 1000)
    assert sorted(cid for cid, _ in dense) == sorted(everything)
    words = sorted({w for _, c in [*corpus, *gone] for r in c for w in r.chunk.text.split()})
    lexical = reader.lexical(words, 1000)
    assert {cid for cid, _ in lexical} == set(everything)
    glob = reader.dense(_query(2), 1000, Comparison("path", "glob", "**"))
    assert sorted(cid for cid, _ in glob) == sorted(everything)


def test_an_index_made_without_bm25_says_so_on_a_milvus_that_has_it(tmp_path: Path) -> None:
    """Collections made on a Milvus before 2.5 have no full-text field: after the server's upgrade, lexical search
    is still unavailable (with the way out), never an error on every hybrid search."""
    require_pymilvus()
    from indexes.milvus.connection import connect
    from indexes.milvus.meta import Published
    from indexes.milvus.reader import MilvusReader
    from indexes.milvus.schema import CollectionNames, create_collections, new_prefix

    (tmp_path / "m").mkdir()
    connection = connect(str(tmp_path / "m" / "milvus.db"))
    try:
        assert connection.supports_bm25, "Milvus Lite has BM25: only the collections lack it"
        names = CollectionNames(new_prefix(tmp_path / "m"))
        create_collections(connection, names, DIMENSION, bm25=False)
        reader = MilvusReader(connection, names, Published(), Manifest("test/model", DIMENSION, store="milvus"))
        reason = str(reader.lexical_unavailable())
        assert "made on a Milvus without BM25" in reason and "semsearch migrate" in reason
        assert reader.lexical(["roses"], 10) == [] and reader.lexical_ceiling(["roses"]) == 0.0
    finally:
        connection.close()
