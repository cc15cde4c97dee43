"""Filters compiled to Milvus expressions: exact strings per dialect, and Milvus Lite against `Filter.matches`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes import Comparison, Compound, Filter
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
    split_attributes,
    successor,
)
from tests.support.milvus import require_pymilvus
from tests.support.milvus_filters import COLLECTION, check_random_filters, create_documents, fill, filterable, found

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


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Any]:
    """A Milvus Lite file holding one collection `documents`, with a row per document, loaded."""
    require_pymilvus()
    from pymilvus import MilvusClient

    client = MilvusClient(str(tmp_path / "m.db"))
    create_documents(client)
    try:
        yield client
    finally:
        client.release_collection(COLLECTION)
        client.close()


def test_lite_runs_the_table_with_the_answers_of_filter_matches(lite: Any) -> None:
    records = fill(lite, np.random.default_rng(14))
    for f, dialects, expected in TABLE:
        if LITE in dialects and not glob_leaves(f):
            assert found(lite, expected) == {i for i, r in records.items() if f.matches(filterable(r))}, expected


def test_lite_agrees_with_filter_matches_and_the_catalog_on_random_filters(lite: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    check_random_filters(lite, LITE, fill(lite, rng), tmp_path / "ix", rng)
