"""Filters compiled to Milvus boolean expressions, with the answers of `Filter.matches`.

Every atom is two-valued: a JSON key is tested with `(exists X)` before it is compared, and
the nullable `pages` column (-1 = none) with `pages >= 0`, so `not` is the exact negation
(`ne`/`nin` match documents without the key, on Lite as on a server). Attributes live in
three typed JSON columns (`split_attributes`), so a string, a number and a boolean never
compare equal on either engine. Prefixes are string ranges (`like` escapes differ between
engines); glob leaves become `document_id in [...]` from a caller's resolver (the store
knows how to list documents). Constant parts are folded away; a filter that is constant as a
whole becomes `path >= ""` (true) or `path < ""` (false): Milvus 2.3.5 rejects a bare `true`
("predicate is not a boolean expression"), which Lite accepts.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ..errors import FilterTooBroad as FilterTooBroad  # re-exported: raised here
from ..filters import BUILTIN_KINDS, RANGES, Comparison, Compound, Filter, Scalar, kind_of
from .connection import Dialect as Dialect  # the one Dialect; re-exported for the expressions' users

MAX_IDS = 10_000  # document ids a glob may expand to (an `in` list that long runs ~0.1-0.3 s)
# Constants as comparisons on `path`, which every filtered collection has: 2.3.5 rejects a bare `true`.
TRUE, FALSE = 'path >= ""', 'path < ""'

# The collection field behind each built-in key.
INTEGER_COLUMNS = ("size", "pages")  # INT64: Milvus 2.3.5 refuses float literals on them
COLUMNS = {"path": "path", "type": "type", "title": "title", "size": "size", "pages": "pages", "modified": "mtime"}
ATTRIBUTE_COLUMNS = {"string": "attr_text", "number": "attr_number", "boolean": "attr_bool"}
_OPERATORS = {"eq": "==", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}

GlobResolver = Callable[[Comparison], Collection[int]]


LITE, SERVER = Dialect.LITE, Dialect.SERVER


def dialect_of(server_version: str) -> Dialect:
    """The dialect of a server from `get_server_version()` (Lite says `milvus_lite-3.2.2`)."""
    return LITE if server_version.startswith("milvus_lite") else SERVER


def split_attributes(attributes: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, int | float], dict[str, bool]]:
    """The attributes as the `attr_text`, `attr_number` and `attr_bool` columns (lists, objects, null: in none)."""
    text = {k: v for k, v in attributes.items() if kind_of(v) == "string"}
    number = {k: v for k, v in attributes.items() if kind_of(v) == "number"}
    boolean = {k: v for k, v in attributes.items() if kind_of(v) == "boolean"}
    return text, number, boolean


def expression(f: Filter, dialect: Dialect, resolve_glob: GlobResolver | None = None) -> str:
    """The Milvus expression matching the rows of the documents that `f` matches."""
    return _compile(f, dialect, resolve_glob)


def glob_leaves(f: Filter) -> list[Comparison]:
    """The glob comparisons in `f`: each needs the document ids it matches (`resolve_glob`)."""
    if isinstance(f, Compound):
        return [c for inner in f.filters for c in glob_leaves(inner)]
    return [f] if isinstance(f, Comparison) and f.op == "glob" else []


def glob_candidates(c: Comparison) -> Comparison:
    """A prefix comparison holding every document the glob can match: the glob's literal head."""
    assert isinstance(c.value, str)
    head, escaped = [], False
    for char in c.value:
        if not escaped and char in "*?[":
            break
        if not escaped and char == "\\":
            escaped = True
            continue
        head.append(char)
        escaped = False
    return Comparison(c.key, "prefix", "".join(head))


def output_field(key: str) -> str:
    """The field to fetch for a key's string value (a glob resolver checks it in Python)."""
    return COLUMNS.get(key, ATTRIBUTE_COLUMNS["string"])


def string_value(row: Mapping[str, Any], key: str) -> str | None:
    """A key's string value in a row holding `output_field(key)`, or None."""
    found = row.get(COLUMNS[key]) if key in COLUMNS else (row.get(ATTRIBUTE_COLUMNS["string"]) or {}).get(key)
    return found if isinstance(found, str) else None


def literal(value: Scalar) -> str:
    """A value as a Milvus literal: strings escaped by hand, numbers by repr, booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def successor(prefix: str) -> str | None:
    """The least string above every string starting with `prefix` (None: there is none)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:
            code = 0xE000  # surrogates are not text
        if code <= sys.maxunicode:
            return "".join(chars) + chr(code)
    return None


def _compile(f: Filter, dialect: Dialect, resolve: GlobResolver | None) -> str:
    if isinstance(f, Compound):
        return _join(f.op, [_compile(inner, dialect, resolve) for inner in f.filters])
    if not isinstance(f, Comparison):
        raise TypeError(f"not a filter: {f!r}")
    if f.op in ("ne", "nin"):
        return _negate(_compile(f.positive(), dialect, resolve))
    if f.op in ("eq", "in"):
        return _membership(f.key, f.value if isinstance(f.value, tuple) else (f.value,), dialect)
    if f.op in RANGES:
        return _range(f.key, f.op, f.value)
    if f.op == "prefix":
        return _prefix(f.key, str(f.value))
    return _glob(f, resolve)


def _join(op: str, parts: Iterable[str]) -> str:
    absorbing, neutral = (FALSE, TRUE) if op == "and" else (TRUE, FALSE)
    kept = [p for p in parts if p != neutral]
    if absorbing in kept:
        return absorbing
    if len(kept) <= 1:
        return kept[0] if kept else neutral
    return "(" + f" {op} ".join(kept) + ")"


def _negate(e: str) -> str:
    return {TRUE: FALSE, FALSE: TRUE}.get(e, f"not {e}")


def _range(key: str, op: str, value: Scalar | tuple[Scalar, ...]) -> str:
    if isinstance(value, tuple) or not isinstance(value, int | float) or isinstance(value, bool):
        return FALSE
    if key in INTEGER_COLUMNS and isinstance(value, float):
        # 2.3.5 rejects a float literal on an INT64 column; for an integer x, x > 2.5 is x > 2, x >= 2.5 is x >= 3
        rounded = math.floor(value) if op in ("gt", "lte") else math.ceil(value)
        value = min(max(rounded, -(2**63)), 2**63 - 1)
    return _atom(key, "number", f"{_OPERATORS[op]} {literal(value)}")


def _members(key: str, kind: str, values: tuple[Scalar, ...]) -> list[Scalar]:
    """The values of `kind` that the key's field may equal, without repeats (integral floats as ints on INT64)."""
    found = [v for v in values if kind_of(v) == kind]
    if key in INTEGER_COLUMNS and kind == "number":
        found = [int(v) for v in found if isinstance(v, int) or float(v).is_integer()]
    return list(dict.fromkeys(found))


def _field(key: str, kind: str) -> str | None:
    """The field holding `key`'s values of `kind` (None: the key never holds that kind)."""
    if key in COLUMNS:
        column_kind = "number" if BUILTIN_KINDS[key] == "date" else BUILTIN_KINDS[key]
        return COLUMNS[key] if column_kind == kind else None
    return f"{ATTRIBUTE_COLUMNS[kind]}[{literal(key)}]" if kind in ATTRIBUTE_COLUMNS else None


def _atom(key: str, kind: str, *tests: str) -> str:
    """`X test and X test ...` for the key's field of `kind`, guarded so that it is never null."""
    field = _field(key, kind)
    if field is None:
        return FALSE
    guard = f"(exists {field})" if key not in COLUMNS else ("pages >= 0" if key == "pages" else "")
    parts = ([guard] if guard else []) + [f"{field} {test}" for test in tests]
    return parts[0] if parts == [guard] else "(" + " and ".join(parts) + ")"


def _membership(key: str, values: tuple[Scalar, ...], dialect: Dialect) -> str:
    """Equality with any of `values`, each compared only with values of its own kind."""
    parts = []
    for kind in ("string", "number", "boolean"):
        values_of_kind = _members(key, kind, values)
        members = [literal(v) for v in values_of_kind]
        same_type = len({type(v) for v in values_of_kind}) == 1  # 2.3.5 rejects [1, 2.5] on JSON
        if len(members) == 1:
            parts.append(_atom(key, kind, f"== {members[0]}"))
        elif members and (key in COLUMNS or (dialect is SERVER and same_type)):
            parts.append(_atom(key, kind, f"in [{', '.join(members)}]"))
        elif members:
            field = _field(key, kind)
            chain = " or ".join(f"{field} == {m}" for m in members)
            parts.append(f"((exists {field}) and ({chain}))")
    return _join("or", parts)


def _prefix(key: str, prefix: str) -> str:
    upper = successor(prefix)
    tests = ([f">= {literal(prefix)}"] if prefix else []) + ([f"< {literal(upper)}"] if upper and prefix else [])
    if not tests and key in COLUMNS:
        return TRUE if _field(key, "string") else FALSE
    return _atom(key, "string", *tests)


def _glob(c: Comparison, resolve: GlobResolver | None) -> str:
    if resolve is None:
        raise ValueError(f"glob filter on {c.key!r} ({c.value!r}) needs a resolver giving the document ids it matches")
    ids = sorted(set(resolve(c)))
    if len(ids) > MAX_IDS:
        raise FilterTooBroad(
            f"the glob {c.value!r} on {c.key} matches {len(ids)} documents; Milvus filters can list at most "
            f"{MAX_IDS}: narrow it (a longer literal start, or another filter beside it)"
        )
    return f"(document_id in [{', '.join(map(str, ids))}])" if ids else FALSE
