"""Metadata filters: the grammar, the catalog against the Python reference, filtered search against brute force."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes import Chunk, ChunkRecord, DocumentRecord, LocalIndex, LocalWriter, Manifest, StoredDocument, vectors
from indexes.filter_sql import where
from search import Filter, InvalidFilter, InvalidQuery, SearchService, parse_filters, search
from search.lexical import query_terms
from search.retrieve import DEPTH
from tests.support.filters import random_document, random_filter, random_query


@dataclass
class Corpus:
    index: LocalIndex
    documents: dict[int, dict[str, Any]]  # document id -> what Filter.matches reads
    chunk_document: dict[int, int]
    chunk_ids: np.ndarray
    matrix: np.ndarray  # the stored vector of each chunk id, in chunk_ids order


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, embedder) -> Corpus:  # type: ignore[no-untyped-def]
    """Three hundred documents with varied attributes, 1-4 passages each, embedded by the real model."""
    rng = np.random.default_rng(6)
    made = [random_document(rng, i) for i in range(300)]
    all_texts = [t for _, texts in made for t in texts]
    embedded = iter(embedder.embed_documents(all_texts))
    index = LocalIndex.create(tmp_path_factory.mktemp("filters") / "ix", Manifest(embedder.name, embedder.dimension))
    with LocalWriter(index) as writer:
        for record, texts in made:
            chunks = [
                ChunkRecord(
                    Chunk(n, t, len(t.split())),
                    hashlib.sha256(f"{record.path}{n}{t}".encode()).hexdigest(),
                    next(embedded).astype("<f4").tobytes(),
                )
                for n, t in enumerate(texts)
            ]
            writer.stage(record, chunks)
        writer.publish()
    return _read_back(index)


def _read_back(index: LocalIndex) -> Corpus:
    with index.read() as reader:
        documents = {d.id: filterable(d) for d in reader.documents()}
        chunk_document = {c.chunk_id: c.document_id for c in reader.all_chunks()}
        chunk_ids = np.array(sorted(chunk_document), dtype=np.int64)
        matrix = reader.vectors([int(i) for i in chunk_ids])
    return Corpus(index, documents, chunk_document, chunk_ids, matrix)


def filterable(document: StoredDocument) -> dict[str, Any]:
    """A stored document as `Filter.matches` reads it."""
    r = document.record
    return {
        "path": r.path,
        "type": r.type,
        "size": r.size,
        "modified": r.mtime,
        "title": r.title,
        "pages": r.pages,
        "attributes": r.attributes,
    }


# --- random filters -------------------------------------------------------------------------


def matching_documents(corpus: Corpus, f: Filter) -> set[int]:
    return {doc_id for doc_id, doc in corpus.documents.items() if f.matches(doc)}


def catalog_documents(corpus: Corpus, f: Filter) -> set[int]:
    with corpus.index.read() as reader:
        return {d.id for d in reader.documents(f)}


# --- the catalog against the Python reference -----------------------------------------------


def test_catalog_and_python_agree_on_random_filters(corpus: Corpus) -> None:
    rng = np.random.default_rng(1)
    sizes = []
    for _ in range(400):
        f = parse_filters(random_filter(rng))
        assert f is not None
        expected = matching_documents(corpus, f)
        assert catalog_documents(corpus, f) == expected
        sizes.append(len(expected))
    assert sum(0 < n < len(corpus.documents) for n in sizes) > 200  # the filters are not trivial


# --- filtered search against brute force ----------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_dense_search_is_exact_within_the_filter(corpus: Corpus, embedder, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(100 + seed)
    f = parse_filters(random_filter(rng))
    assert f is not None
    query, k = embedder.embed_query(random_query(rng)), int(rng.choice([1, 5, 10, 50]))
    docs = matching_documents(corpus, f)
    mask = np.array([corpus.chunk_document[int(i)] in docs for i in corpus.chunk_ids], dtype=bool)
    with corpus.index.read() as reader:
        allowed = reader.allowed_chunks(f)
        found = reader.dense(query, k, f)
    assert allowed.tolist() == corpus.chunk_ids[mask].tolist()
    scores = {int(i): float(s) for i, s in zip(corpus.chunk_ids[mask], corpus.matrix[mask] @ query)}
    assert len(found) == min(k, len(scores))
    assert all(corpus.chunk_document[cid] in docs for cid, _ in found)
    for cid, score in found:
        assert score == pytest.approx(scores[cid], abs=1e-5)
    floor = found[-1][1] if found else np.inf
    returned = {cid for cid, _ in found}
    assert not [cid for cid, s in scores.items() if cid not in returned and s > floor + 1e-5]


@pytest.mark.parametrize("seed", range(40))
def test_lexical_search_is_exact_within_the_filter(corpus: Corpus, seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    f = parse_filters(random_filter(rng))
    assert f is not None
    terms, k = query_terms(random_query(rng)), int(rng.choice([1, 5, 10, 50]))
    docs = matching_documents(corpus, f)
    with corpus.index.read() as reader:
        everything = reader.lexical(terms, 100_000)
        found = reader.lexical(terms, k, where=f)
    scores = {cid: s for cid, s in everything if corpus.chunk_document[cid] in docs}
    assert len(found) == min(k, len(scores))
    assert all(scores[cid] == pytest.approx(s) for cid, s in found)
    floor = found[-1][1] if found else np.inf
    returned = {cid for cid, _ in found}
    assert not [cid for cid, s in scores.items() if cid not in returned and s > floor + 1e-9]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_search_returns_only_matching_passages(corpus: Corpus, embedder, mode: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    for _ in range(15):
        f = parse_filters(random_filter(rng))
        assert f is not None
        text, docs = random_query(rng), matching_documents(corpus, f)
        hits = search(corpus.index, embedder, text, 10, mode, filters=f)
        assert all(h.document_id in docs and corpus.documents[h.document_id]["path"] == h.path for h in hits)
        if mode != "lexical":
            assert len(hits) == min(10, sum(d in docs for d in corpus.chunk_document.values()))


def _worst_documents(corpus: Corpus, embedder, text: str, chunks: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Paths of the documents whose best passage ranks worst for `text`, holding at least `chunks` passages."""
    scores = corpus.matrix @ embedder.embed_query(text)
    best: dict[int, float] = {}
    for cid, score in zip(corpus.chunk_ids.tolist(), scores.tolist()):
        doc = corpus.chunk_document[cid]
        best[doc] = max(best.get(doc, -np.inf), score)
    paths, held = [], 0
    for doc in sorted(best, key=best.__getitem__):
        paths.append(corpus.documents[doc]["path"])
        held += sum(d == doc for d in corpus.chunk_document.values())
        if held >= chunks:
            return paths
    raise AssertionError("the corpus is too small")


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_a_selective_filter_still_gets_k_passages(corpus: Corpus, embedder, mode: str) -> None:  # type: ignore[no-untyped-def]
    text = "espresso roast grinder crema"
    paths = _worst_documents(corpus, embedder, text, 5)
    scores = corpus.matrix @ embedder.embed_query(text)
    wanted = [corpus.documents[corpus.chunk_document[int(cid)]]["path"] in paths for cid in corpus.chunk_ids]
    assert (scores > scores[wanted].max()).sum() > DEPTH  # below all that an unfiltered search would fetch
    hits = search(
        corpus.index, embedder, text, 5, mode, filters=parse_filters({"key": "path", "type": "in", "value": paths})
    )
    assert len(hits) == 5
    assert {h.path for h in hits} <= set(paths)


def test_no_matching_document_gives_no_results(corpus: Corpus, embedder) -> None:  # type: ignore[no-untyped-def]
    f = parse_filters({"key": "team", "type": "eq", "value": "nobody"})
    assert f is not None
    with corpus.index.read() as reader:
        assert reader.allowed_chunks(f).tolist() == []
        assert reader.dense(embedder.embed_query("coffee"), 5, f) == []
    for mode in ("hybrid", "dense", "lexical"):
        assert search(corpus.index, embedder, "espresso", 5, mode, filters=f) == []


def test_the_service_threads_filters_through_search_and_ask(corpus: Corpus, embedder) -> None:  # type: ignore[no-untyped-def]
    service = SearchService(corpus.index, embedder)
    f = parse_filters(
        {
            "type": "and",
            "filters": [{"key": "team", "type": "eq", "value": "b"}, {"key": "type", "type": "eq", "value": "pdf"}],
        }
    )
    assert f is not None
    docs = matching_documents(corpus, f)
    assert all(h.document_id in docs for h in service.search("orbit rocket launch", 8, filters=f))
    answer = service.ask("which rocket reached orbit?", 4, filters=f)
    assert answer.results and all(h.document_id in docs for h in answer.results)
    events = list(service.ask_stream("which rocket reached orbit?", 4, filters=f))
    assert all(h.document_id in docs for h in events[-1]["answer"].results)
    assert service.search("orbit rocket launch", 3) == service.search("orbit rocket launch", 3, filters=None)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_a_segment_honours_the_selector(kind: str) -> None:
    matrix = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    index = vectors.build(np.array([10, 20, 30, 40, 50, 60]), matrix, kind=kind)
    query = np.array([1, 0, 0, 0], dtype=np.float32)

    def found(k: int, allowed: list[int] | None = None) -> list[int]:
        selector = vectors.batch_selector(np.array(allowed)) if allowed is not None else None
        return [int(i) for i in vectors.search(index, query, k, selector)[1] if i >= 0]

    assert sorted(found(2)) == [10, 50]
    assert found(3, [20, 30, 50])[0] == 50
    assert sorted(found(10, [20, 30, 99])) == [20, 30]


# --- the rules, case by case ----------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path) -> LocalIndex:
    """An index holding only documents (no passages)."""
    index = LocalIndex.create(tmp_path / "ix", Manifest("test/model", 4))
    rows = [
        ("docs/a.md", "markdown", 10, 1704067200.0, "A", None, {"team": "a", "year": 2021, "public": True}),
        ("docs/x/y/b.txt", "text", 20, 1704067199.5, "", None, {"team": "b", "year": "2021", "public": 1}),
        ("docs/.md", "markdown", 30, 1600000000.0, "dot", None, {"year": 2022.0, "tags": ["x"]}),
        ("other/docs/c.pdf", "pdf", 40, 1700000000.0, "C", 12, {"team": "c", "public": False, "v": None}),
        ("[draft] notes.md", "markdown", 50, 1710000000.0, "D", None, {"a.b c": "odd", "team": "ä"}),
        ("doc/a.md", "markdown", 60, 1720000000.0, "E", None, {}),
    ]
    with LocalWriter(index) as writer:
        for path, kind, size, mtime, title, pages, attributes in rows:
            writer.stage(DocumentRecord(path, "h", kind, title, size, mtime, pages, attributes), [])
        writer.publish()
    return index


def _paths(catalog: LocalIndex, raw: dict[str, Any]) -> set[str]:
    f = parse_filters(raw)
    assert f is not None
    with catalog.read() as reader:
        reference = {d.record.path for d in reader.documents() if f.matches(filterable(d))}
        assert {d.record.path for d in reader.documents(f)} == reference
    return reference


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("docs/*.md", {"docs/a.md", "docs/.md"}),
        ("docs/**", {"docs/a.md", "docs/x/y/b.txt", "docs/.md"}),
        ("**/*.md", {"docs/a.md", "docs/.md", "[draft] notes.md", "doc/a.md"}),
        ("docs/**/*.txt", {"docs/x/y/b.txt"}),
        ("**/docs/*", {"docs/a.md", "docs/.md", "other/docs/c.pdf"}),
        ("doc?/a.md", {"docs/a.md"}),
        ("*", {"[draft] notes.md"}),
        ("[[]draft]*", {"[draft] notes.md"}),
        ("\\[draft]*", {"[draft] notes.md"}),
        ("[draft]*", set()),  # a character class, as in --include/--exclude
        ("[!d]*/**", {"other/docs/c.pdf"}),
        ("do[a-z]?/*.md", {"docs/a.md", "docs/.md"}),
        ("*.pdf", set()),
        ("**.pdf", set()),  # `**` crosses folders only as a whole segment
        ("**/*.pdf", {"other/docs/c.pdf"}),
        ("docs/", {"docs/a.md", "docs/x/y/b.txt", "docs/.md"}),
    ],
)
def test_glob_on_path(catalog: LocalIndex, pattern: str, expected: set[str]) -> None:
    assert _paths(catalog, {"key": "path", "type": "glob", "value": pattern}) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"key": "path", "type": "prefix", "value": "docs/"}, {"docs/a.md", "docs/x/y/b.txt", "docs/.md"}),
        ({"key": "path", "type": "prefix", "value": "doc"}, {"docs/a.md", "docs/x/y/b.txt", "docs/.md", "doc/a.md"}),
        ({"key": "modified", "type": "gte", "value": "2024-01-01"}, {"docs/a.md", "[draft] notes.md", "doc/a.md"}),
        (
            {"key": "modified", "type": "gte", "value": "2024-01-01T00:00:00Z"},
            {"docs/a.md", "[draft] notes.md", "doc/a.md"},
        ),
        (
            {"key": "modified", "type": "lt", "value": "2024-01-01T01:00:00+01:00"},
            {"docs/x/y/b.txt", "docs/.md", "other/docs/c.pdf"},
        ),
        ({"key": "modified", "type": "eq", "value": "2024-01-01"}, {"docs/a.md"}),
        ({"key": "modified", "type": "lt", "value": 1700000000}, {"docs/.md"}),
        ({"key": "team", "type": "in", "value": ["a", "b"]}, {"docs/a.md", "docs/x/y/b.txt"}),
        (
            {"key": "team", "type": "nin", "value": ["a", "b"]},
            {"docs/.md", "other/docs/c.pdf", "[draft] notes.md", "doc/a.md"},
        ),
        ({"key": "team", "type": "eq", "value": "ä"}, {"[draft] notes.md"}),
        ({"key": "year", "type": "eq", "value": 2021}, {"docs/a.md"}),
        ({"key": "year", "type": "eq", "value": "2021"}, {"docs/x/y/b.txt"}),
        ({"key": "year", "type": "in", "value": [2022, "2021"]}, {"docs/x/y/b.txt", "docs/.md"}),
        ({"key": "year", "type": "gte", "value": 2021.5}, {"docs/.md"}),
        ({"key": "public", "type": "eq", "value": True}, {"docs/a.md"}),
        (
            {"key": "public", "type": "ne", "value": True},
            {"docs/x/y/b.txt", "docs/.md", "other/docs/c.pdf", "[draft] notes.md", "doc/a.md"},
        ),
        ({"key": "public", "type": "eq", "value": 1}, {"docs/x/y/b.txt"}),
        ({"key": "tags", "type": "eq", "value": "x"}, set()),
        (
            {"key": "v", "type": "ne", "value": "x"},
            {"docs/a.md", "docs/x/y/b.txt", "docs/.md", "other/docs/c.pdf", "[draft] notes.md", "doc/a.md"},
        ),
        ({"key": "a.b c", "type": "eq", "value": "odd"}, {"[draft] notes.md"}),
        (
            {"key": "title", "type": "ne", "value": "A"},
            {"docs/x/y/b.txt", "docs/.md", "other/docs/c.pdf", "[draft] notes.md", "doc/a.md"},
        ),
        ({"key": "pages", "type": "gt", "value": 0}, {"other/docs/c.pdf"}),
        ({"key": "size", "type": "in", "value": [10, 60.0]}, {"docs/a.md", "doc/a.md"}),
        ({"key": "type", "type": "eq", "value": "x'); DROP TABLE documents; --"}, set()),
        (
            {
                "type": "or",
                "filters": [
                    {
                        "type": "and",
                        "filters": [
                            {"key": "type", "type": "eq", "value": "markdown"},
                            {"key": "size", "type": "gt", "value": 30},
                        ],
                    },
                    {
                        "type": "and",
                        "filters": [
                            {"key": "team", "type": "eq", "value": "c"},
                            {"type": "or", "filters": [{"key": "public", "type": "eq", "value": False}]},
                        ],
                    },
                ],
            },
            {"[draft] notes.md", "doc/a.md", "other/docs/c.pdf"},
        ),
    ],
)
def test_comparison_rules(catalog: LocalIndex, raw: dict[str, Any], expected: set[str]) -> None:
    assert _paths(catalog, raw) == expected


def test_values_are_bound_never_written_into_the_sql() -> None:
    f = parse_filters({"key": "team", "type": "eq", "value": "x'); DROP TABLE documents; --"})
    assert f is not None
    sql, params = where(f)
    assert "DROP" not in sql and "x'); DROP TABLE documents; --" in params


def test_parse_filters_takes_none_and_gives_typed_nodes() -> None:
    assert parse_filters(None) is None
    f = parse_filters({"key": "modified", "type": "gte", "value": "2024-01-01"})
    assert f == parse_filters({"key": "modified", "type": "gte", "value": datetime(2024, 1, 1, tzinfo=UTC).timestamp()})


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"key": "team", "type": "eq", "value": "a"}
    for _ in range(depth):
        node = {"type": "and", "filters": [node]}
    return node


LEAF = {"key": "team", "type": "eq", "value": "a"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("team = a", r'^filters: expected an object such as .*, not "team = a"$'),
        ([LEAF], r"^filters: expected an object"),
        ({"key": "team", "value": "a"}, r"^filters\.type: missing; use one of eq, ne, gt"),
        (
            {"type": "or", "filters": [LEAF, {"key": "team", "type": "equals", "value": "a"}]},
            r'^filters\.filters\[1\]\.type: "equals" is not one of '
            r"eq, ne, gt, gte, lt, lte, in, nin, prefix, glob, and, or$",
        ),
        ({"type": "and", "filters": []}, r"^filters\.filters: and needs a non-empty list of filters, not \[\]$"),
        ({"type": "and", "filters": LEAF}, r"^filters\.filters: and needs a non-empty list"),
        (
            {"type": "and", "filters": [LEAF], "key": "x"},
            r'^filters: unknown field "key"; and filters have type, filters$',
        ),
        ({"key": "team", "type": "eq", "vaule": "a"}, r'^filters: unknown field "vaule"'),
        ({"key": "team", "type": "eq"}, r"^filters\.value: missing; eq filters have key, type, value$"),
        ({"type": "eq", "value": "a"}, r"^filters\.key: missing"),
        ({"key": 3, "type": "eq", "value": "a"}, r"^filters\.key: expected a string, not 3$"),
        (
            {"key": "", "type": "eq", "value": "a"},
            r'^filters\.key: "" cannot be used: keys are 1 to 128 printable ASCII',
        ),
        ({"key": 'a"b', "type": "eq", "value": "a"}, r"^filters\.key: .* cannot be used"),
        ({"key": "a\\b", "type": "eq", "value": "a"}, r"^filters\.key: .* cannot be used"),
        ({"key": "équipe", "type": "eq", "value": "a"}, r"^filters\.key: .* cannot be used"),
        (
            {"key": "team", "type": "eq", "value": None},
            r"^filters\.value: team takes a string, a number or a boolean, not null$",
        ),
        ({"key": "team", "type": "eq", "value": {"x": 1}}, r"^filters\.value: team takes a string"),
        ({"key": "team", "type": "eq", "value": ["a"]}, r"^filters\.value: team takes a string"),
        ({"key": "size", "type": "eq", "value": "big"}, r'^filters\.value: size takes a number, not "big"$'),
        ({"key": "size", "type": "eq", "value": True}, r"^filters\.value: size takes a number, not true$"),
        ({"key": "path", "type": "eq", "value": 3}, r"^filters\.value: path takes a string, not 3$"),
        (
            {"key": "team", "type": "in", "value": []},
            r"^filters\.value: in needs a list of 1 to 1000 strings, numbers or booleans, not \[\]$",
        ),
        ({"key": "team", "type": "nin", "value": "a"}, r"^filters\.value: nin needs a list"),
        ({"key": "team", "type": "in", "value": ["a", ["b"]]}, r"^filters\.value\[1\]: team takes a string"),
        ({"key": "team", "type": "in", "value": ["a"] * 1001}, r"^filters\.value: in needs a list of 1 to 1000"),
        (
            {"key": "year", "type": "gt", "value": "soon"},
            r'^filters\.value: "soon" is neither a number nor an ISO 8601 date',
        ),
        (
            {"key": "year", "type": "gt", "value": True},
            r"^filters\.value: gt on year needs a number or an ISO 8601 date, not true$",
        ),
        (
            {"key": "year", "type": "lt", "value": [2020]},
            r"^filters\.value: lt on year needs a number or an ISO 8601 date",
        ),
        ({"key": "size", "type": "gt", "value": "2024-01-01"}, r"^filters\.value: gt on size needs a number, not"),
        (
            {"key": "path", "type": "gt", "value": "a"},
            r"^filters\.value: gt compares numbers and dates, but path is a string; use eq",
        ),
        (
            {"key": "modified", "type": "gte", "value": "yesterday"},
            r'^filters\.value: "yesterday" is neither a number nor an ISO 8601 date',
        ),
        (
            {"key": "modified", "type": "in", "value": ["2024-01-01", "later"]},
            r"^filters\.value\[1\]: \"later\" is neither",
        ),
        (
            {"key": "size", "type": "prefix", "value": "1"},
            r"^filters\.value: prefix matches strings: give a string value and a string key, not size",
        ),
        ({"key": "path", "type": "glob", "value": 3}, r"^filters\.value: glob matches strings"),
        ({"key": "year", "type": "eq", "value": float("nan")}, r"^filters\.value: nan is not a finite number$"),
        ({"key": "year", "type": "eq", "value": 2**70}, r"^filters\.value: \d+ is out of range"),
        ({"key": "team", "type": "eq", "value": "\ud800"}, r"^filters\.value: the string is not valid Unicode text"),
        ({"key": "\ud800", "type": "eq", "value": "a"}, r'^filters\.key: "\\ud800" cannot be used'),
        (_nested(20), r"^filters(\.filters\[0\]){20}: filters may nest at most 20 levels deep$"),
        (
            {"type": "or", "filters": [LEAF] * 101},
            r"^filters\.filters\[100\]: a filter may hold at most 100 comparisons$",
        ),
        (
            {"type": "or", "filters": [{"key": "k", "type": "in", "value": list(range(1000))}] * 11},
            r"^filters\.filters\[10\]: a filter may hold at most 10000 values in all$",
        ),
    ],
)
def test_invalid_filters_say_what_is_wrong_and_where(raw: object, message: str) -> None:
    with pytest.raises(InvalidFilter, match=message) as caught:
        parse_filters(raw)
    assert isinstance(caught.value, InvalidQuery)  # so the app's 422 handler covers it


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert parse_filters(_nested(19)) is not None


def test_a_reader_asked_for_true_then_for_1_answers_each(tmp_path: Path, store: str) -> None:
    """Filters equal in Python (`True == 1`) are different filters: a reader's memo must not mix them up."""
    from tests.support.stores import make_index

    index = make_index(tmp_path / "ix", Manifest("hash/bow-4", 4), store)
    rows = {"yes.md": True, "one.md": 1}
    with index.writer() as writer:
        for n, (path, flag) in enumerate(rows.items()):
            vector = np.eye(4, dtype="<f4")[n].tobytes()
            chunk = ChunkRecord(Chunk(0, path, 1), hashlib.sha256(path.encode()).hexdigest(), vector)
            writer.stage_many([(DocumentRecord(path, path, "md", path, attributes={"flag": flag}), [chunk])])
        writer.publish()
    query = np.full(4, 0.5, dtype=np.float32)
    try:
        with index.read() as reader:
            found = {}
            for value in (True, 1):
                hits = reader.dense(query, 5, parse_filters({"key": "flag", "type": "eq", "value": value}))
                found[value is True] = {c.path for c in reader.chunks([i for i, _ in hits]).values()}
        assert found == {True: {"yes.md"}, False: {"one.md"}}
    finally:
        index.close()
