"""Filters compiled to Milvus expressions: exact strings per dialect, and Milvus Lite against `Filter.matches`."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes import Comparison, Compound, DocumentRecord, Filter, Index, IndexWriter, Manifest, glob_matches
from indexes.milvus.filter_expr import (
    LITE,
    MAX_IDS,
    SERVER,
    FilterTooBroad,
    dialect_of,
    expression,
    glob_candidates,
    glob_leaves,
    literal,
    output_field,
    split_attributes,
    string_value,
    successor,
)
from search import parse_filters
from tests.support.filters import random_document, random_filter
from tests.support.milvus import require_pymilvus

TRUE, FALSE = 'path >= ""', 'path < ""'  # constants: every filtered collection has a path
T, N, B = 'attr_text["{}"]', 'attr_number["{}"]', 'attr_bool["{}"]'


def _eq(field: str, value: str) -> str:
    return f"((exists {field}) and {field} == {value})"


TEAM, YEAR_T, YEAR_N = T.format("team"), T.format("year"), N.format("year")
BOTH = (LITE, SERVER)
TABLE: list[tuple[Filter, tuple[Any, ...], str]] = [
    (Comparison("team", "eq", "a"), BOTH, _eq(TEAM, '"a"')),
    (Comparison("team", "ne", "a"), BOTH, "not " + _eq(TEAM, '"a"')),
    (Comparison("year", "eq", 2021), BOTH, _eq(YEAR_N, "2021")),
    (Comparison("year", "eq", "2021"), BOTH, _eq(YEAR_T, '"2021"')),
    (Comparison("public", "eq", True), BOTH, _eq(B.format("public"), "true")),
    (Comparison("public", "ne", False), BOTH, "not " + _eq(B.format("public"), "false")),
    (Comparison("score", "gte", 0.5), BOTH, f"((exists {N.format('score')}) and {N.format('score')} >= 0.5)"),
    (Comparison("score", "lt", 1e20), BOTH, f"((exists {N.format('score')}) and {N.format('score')} < 1e+20)"),
    (Comparison("a.b c", "eq", "x"), BOTH, _eq(T.format("a.b c"), '"x"')),
    (Comparison("team", "in", ("a",)), BOTH, _eq(TEAM, '"a"')),
    (Comparison("team", "in", ("a", "b")), (SERVER,), f'((exists {TEAM}) and {TEAM} in ["a", "b"])'),
    (Comparison("team", "in", ("a", "b")), (LITE,), f'((exists {TEAM}) and ({TEAM} == "a" or {TEAM} == "b"))'),
    (
        Comparison("year", "in", (2021, "2021", 2022, True)),
        (SERVER,),
        f"({_eq(YEAR_T, chr(34) + '2021' + chr(34))} or ((exists {YEAR_N}) and {YEAR_N} in [2021, 2022])"
        f" or {_eq(B.format('year'), 'true')})",
    ),
    (
        Comparison("year", "nin", (2021, "2021", 2022.5)),
        (LITE,),
        f"not ({_eq(YEAR_T, chr(34) + '2021' + chr(34))} or "
        f"((exists {YEAR_N}) and ({YEAR_N} == 2021 or {YEAR_N} == 2022.5)))",
    ),
    (Comparison("path", "eq", "a.md"), BOTH, '(path == "a.md")'),
    (Comparison("type", "in", ("pdf", "text")), BOTH, '(type in ["pdf", "text"])'),
    (Comparison("size", "in", (10, 60.0, 2.5)), BOTH, "(size in [10, 60])"),  # INT64: no float literals on 2.3.5
    (Comparison("size", "eq", 2.5), BOTH, FALSE),
    (Comparison("size", "gt", 99), BOTH, "(size > 99)"),
    (Comparison("size", "gt", 2.5), BOTH, "(size > 2)"),
    (Comparison("size", "gte", 2.5), BOTH, "(size >= 3)"),
    (Comparison("pages", "lte", -0.5), BOTH, "(pages >= 0 and pages <= -1)"),
    (Comparison("size", "lt", 1e20), BOTH, "(size < 9223372036854775807)"),
    (
        Comparison("score", "in", (0.5, 1.5)),
        (SERVER,),
        f"((exists {N.format('score')}) and {N.format('score')} in [0.5, 1.5])",
    ),
    (
        Comparison("score", "in", (0.5, 1)),
        (SERVER,),
        f"((exists {N.format('score')}) and ({N.format('score')} == 0.5 or {N.format('score')} == 1))",
    ),
    (Comparison("modified", "lte", 1704067200.5), BOTH, "(mtime <= 1704067200.5)"),
    (Comparison("pages", "lt", 3), BOTH, "(pages >= 0 and pages < 3)"),
    (Comparison("pages", "nin", (1, 2)), BOTH, "not (pages >= 0 and pages in [1, 2])"),
    (Comparison("size", "eq", "ten"), BOTH, FALSE),  # a number column never holds a string
    (Comparison("path", "gt", 3), BOTH, FALSE),
    (Comparison("path", "prefix", "docs/"), BOTH, '(path >= "docs/" and path < "docs0")'),
    (Comparison("path", "prefix", ""), BOTH, TRUE),
    (
        Comparison("tags", "prefix", "gr"),
        BOTH,
        f'((exists {T.format("tags")}) and {T.format("tags")} >= "gr" and {T.format("tags")} < "gs")',
    ),
    (Comparison("tags", "prefix", ""), BOTH, f"(exists {T.format('tags')})"),
    (Comparison("title", "prefix", "a\U0010ffff"), BOTH, '(title >= "a\U0010ffff" and title < "b")'),
    (Comparison("title", "prefix", "\U0010ffff"), BOTH, '(title >= "\U0010ffff")'),
    (Comparison("path", "glob", "docs/*.md"), BOTH, "(document_id in [2, 3, 7])"),
    (Comparison("path", "glob", "none/*"), BOTH, FALSE),
    (
        Compound(
            "or",
            (
                Comparison("team", "eq", "a"),
                Compound("and", (Comparison("size", "gt", 3), Comparison("public", "eq", False))),
            ),
        ),
        BOTH,
        f"({_eq(TEAM, chr(34) + 'a' + chr(34))} or ((size > 3) and {_eq(B.format('public'), 'false')}))",
    ),
    (Compound("and", (Comparison("size", "eq", "x"), Comparison("team", "eq", "a"))), BOTH, FALSE),
    (Compound("or", (Comparison("path", "prefix", ""), Comparison("team", "eq", "a"))), BOTH, TRUE),
    (Compound("and", (Comparison("path", "prefix", ""), Comparison("size", "gt", 3))), BOTH, "(size > 3)"),
    (Compound("or", (Comparison("size", "ne", "x"),)), BOTH, TRUE),
]


def _fixed_globs(c: Comparison) -> list[int]:
    return [7, 3, 2, 3] if c.value == "docs/*.md" else []


@pytest.mark.parametrize(("f", "dialects", "expected"), TABLE)
def test_expressions_are_exactly_these(f: Filter, dialects: tuple[Any, ...], expected: str) -> None:
    for dialect in dialects:
        assert expression(f, dialect, _fixed_globs) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", '"plain"'),
        ('q"uo\\te', '"q\\"uo\\\\te"'),
        ("line\nbreak\ttab\rcr", '"line\\nbreak\\ttab\\rcr"'),
        ("\x01 ä 😀 %_*", '"\x01 ä 😀 %_*"'),  # raw: Lite rejects \\uXXXX escapes, 2.3.5 surrogate pairs
        ('") or true or ("', '"\\") or true or (\\""'),
        ("\\", '"\\\\"'),
        (2**53 + 1, "9007199254740993"),
        (1.5e-07, "1.5e-07"),
        (-0.25, "-0.25"),
        (True, "true"),
    ],
)
def test_literals_are_escaped_by_hand(value: Any, expected: str) -> None:
    assert literal(value) == expected


def test_the_prefix_successor_skips_surrogates_and_carries() -> None:
    assert successor("ab") == "ac"
    assert successor("a\ud7ff") == "a\ue000"
    assert successor("a\U0010ffff\U0010ffff") == "b"
    assert successor("\U0010ffff") is None
    assert successor("") is None


def test_globs_need_a_resolver_and_at_most_max_ids_documents() -> None:
    f = Compound("and", (Comparison("team", "eq", "a"), Comparison("path", "glob", "docs/**")))
    assert glob_leaves(f) == [Comparison("path", "glob", "docs/**")]
    with pytest.raises(ValueError, match="needs a resolver"):
        expression(f, LITE)
    with pytest.raises(FilterTooBroad, match=f"matches {MAX_IDS + 1} documents.*at most {MAX_IDS}"):
        expression(f, SERVER, lambda c: range(MAX_IDS + 1))
    assert glob_candidates(Comparison("path", "glob", "do\\[cs]/*.md")) == Comparison("path", "prefix", "do[cs]/")
    assert glob_candidates(Comparison("t", "glob", "a?b")) == Comparison("t", "prefix", "a")


def test_attributes_split_by_kind_and_dialects_by_version() -> None:
    attributes = {"t": "x", "n": 2, "f": 2.5, "b": True, "l": ["x"], "o": {"a": 1}, "z": None}
    assert split_attributes(attributes) == ({"t": "x"}, {"n": 2, "f": 2.5}, {"b": True})
    assert dialect_of("milvus_lite-3.2.2") is LITE
    assert dialect_of("v2.3.5-lite") is SERVER
    assert dialect_of("v2.5.4") is SERVER


# --- Milvus Lite against Filter.matches and the local catalog --------------------------------

DOCUMENTS, FILTERS = 200, 300


def _filterable(record: DocumentRecord) -> dict[str, Any]:
    return {
        "path": record.path,
        "type": record.type,
        "size": record.size,
        "modified": record.mtime,
        "title": record.title,
        "pages": record.pages,
        "attributes": record.attributes,
    }


def _row(document_id: int, record: DocumentRecord) -> dict[str, Any]:
    text, number, boolean = split_attributes(record.attributes)
    return {
        "document_id": document_id,
        **{k: getattr(record, k) for k in ("path", "type", "title", "size", "mtime")},
        "pages": -1 if record.pages is None else record.pages,
        "attr_text": text,
        "attr_number": number,
        "attr_bool": boolean,
        "v": [1.0, 0.0],
    }


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Any]:
    """A Milvus Lite file holding one collection `documents`, with a row per document, loaded."""
    require_pymilvus()
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(tmp_path / "m.db"))
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("document_id", DataType.INT64, is_primary=True)
    for name in ("path", "type", "title"):
        schema.add_field(name, DataType.VARCHAR, max_length=4096)
    schema.add_field("size", DataType.INT64)
    schema.add_field("pages", DataType.INT64)
    schema.add_field("mtime", DataType.DOUBLE)
    for name in ("attr_text", "attr_number", "attr_bool"):
        schema.add_field(name, DataType.JSON)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="IP")
    client.create_collection("documents", schema=schema, index_params=params, consistency_level="Strong")
    try:
        yield client
    finally:
        client.release_collection("documents")
        client.close()


def _query(client: Any, expr: str, fields: list[str]) -> list[dict[str, Any]]:
    return list(client.query("documents", filter=expr, output_fields=fields, limit=16_384))


def _resolver(client: Any) -> Any:
    def resolve(c: Comparison) -> Collection[int]:
        """The documents a glob matches: candidates by its literal head, then the glob rule in Python."""
        assert isinstance(c.value, str)
        rows = _query(client, expression(glob_candidates(c), LITE), ["document_id", output_field(c.key)])
        return {
            r["document_id"] for r in rows if (s := string_value(r, c.key)) is not None and glob_matches(c.value, s)
        }

    return resolve


def _local_catalog(folder: Path, records: dict[int, DocumentRecord]) -> Index:
    index = Index.create(folder, Manifest("test/model", 4))
    with IndexWriter(index) as writer:
        for record in records.values():
            writer.stage(record, [])
        writer.publish()
    return index


def _fill(client: Any, rng: np.random.Generator) -> dict[int, DocumentRecord]:
    records = {i + 1: random_document(rng, i)[0] for i in range(DOCUMENTS)}
    client.insert("documents", [_row(i, r) for i, r in records.items()])
    client.release_collection("documents")
    client.load_collection("documents")  # as after a reopen: Lite searches only a loaded collection
    return records


def test_lite_runs_the_table_with_the_answers_of_filter_matches(lite: Any) -> None:
    records = _fill(lite, np.random.default_rng(14))
    for f, dialects, expected in TABLE:
        if LITE in dialects and not glob_leaves(f):
            found = {r["document_id"] for r in _query(lite, expected, ["document_id"])}
            assert found == {i for i, r in records.items() if f.matches(_filterable(r))}, expected


def test_lite_agrees_with_filter_matches_and_the_catalog_on_random_filters(lite: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    records = _fill(lite, rng)
    index, resolve, sizes = _local_catalog(tmp_path / "ix", records), _resolver(lite), []
    try:
        with index.read() as reader:
            for n in range(FILTERS):
                f = parse_filters(random_filter(rng))
                assert f is not None
                expected = {i for i, r in records.items() if f.matches(_filterable(r))}
                expr = expression(f, LITE, resolve)
                found = {r["document_id"] for r in _query(lite, expr, ["document_id"])}
                assert found == expected, f"filter {n}: {f}\n{expr}"
                assert {d.record.path for d in reader.documents(f)} == {records[i].path for i in expected}
                sizes.append(len(expected))
    finally:
        index.close()
    assert sum(0 < n < DOCUMENTS for n in sizes) > FILTERS // 2  # the filters are not trivial
