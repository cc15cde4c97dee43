"""Metadata filters in OpenAI's vector-store grammar, turned into SQL over `documents d`.

    {"key": "team", "type": "eq", "value": "a"}
    {"type": "and", "filters": [{"key": "year", "type": "gte", "value": 2021},
                                {"key": "path", "type": "glob", "value": "docs/**/*.md"}]}

Keys `path`, `type`, `title`, `size`, `pages` and `modified` (the file's mtime) are the
document's own columns; any other key is a user attribute. Comparisons follow OpenAI's
type rules: a string equals only a string, a number only a number, a boolean only a
boolean. `gt`/`gte`/`lt`/`lte` compare numbers; an ISO 8601 date given there (or
anywhere for `modified`) is turned into unix seconds (UTC unless it says otherwise).
`ne` and `nin` are the exact negations of `eq` and `in`, so a document without the key
matches them. Our extensions, for strings: `prefix`, and `glob` where `*` and `?` stay
within one path segment, `**` crosses segments (`**/` also matches no folder at all)
and `[`/`]` are plain characters.

`Filter.sql()` and `Filter.matches()` implement the same rules twice: once for the
index (SQLite, values always bound as parameters), once in Python as a reference.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .errors import InvalidFilter

Scalar = str | int | float | bool
Sql = tuple[str, list[object]]

EQUALITY, RANGES, MEMBERSHIP, PATTERNS = ("eq", "ne"), ("gt", "gte", "lt", "lte"), ("in", "nin"), ("prefix", "glob")
COMPARISONS = (*EQUALITY, *RANGES, *MEMBERSHIP, *PATTERNS)
COMPOUNDS = ("and", "or")
MAX_DEPTH, MAX_LEAVES, MAX_LIST, MAX_VALUES = 20, 100, 1000, 10_000

# Built-in keys: the column each one reads and the kind of value it holds.
BUILTINS: dict[str, tuple[str, str]] = {
    "path": ("d.path", "string"), "type": ("d.type", "string"), "title": ("d.title", "string"),
    "size": ("d.size", "number"), "pages": ("d.pages", "number"), "modified": ("d.mtime", "date"),
}
_SQL_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PY_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
}
_NUMBER_TYPES = "('integer', 'real')"
# A JSON path quotes the key in "..." without escapes, and the catalog's JSON escapes
# anything outside printable ASCII, so only these keys can be looked up exactly.
_SAFE_KEY = re.compile(r'[ !#-\[\]-~]{1,128}')


class Filter(ABC):
    """A parsed, valid filter over documents."""

    @abstractmethod
    def sql(self) -> Sql:
        """A boolean SQL expression over `documents d` (never NULL) and its parameters."""

    @abstractmethod
    def matches(self, document: Mapping[str, Any]) -> bool:
        """Whether a document matches: built-in keys at the top level, user ones under "attributes"."""


@dataclass(frozen=True)
class Compound(Filter):
    """All (`and`) or any (`or`) of the inner filters."""

    op: str
    filters: tuple[Filter, ...]

    def sql(self) -> Sql:
        parts = [f.sql() for f in self.filters]
        joined = f" {self.op.upper()} ".join(text for text, _ in parts)  # each part is parenthesised
        return f"({joined})", [p for _, params in parts for p in params]

    def matches(self, document: Mapping[str, Any]) -> bool:
        test = all if self.op == "and" else any
        return test(f.matches(document) for f in self.filters)


@dataclass(frozen=True)
class Comparison(Filter):
    """One key compared with a value (a tuple of values for `in`/`nin`), already normalised."""

    key: str
    op: str
    value: Scalar | tuple[Scalar, ...]

    def sql(self) -> Sql:
        if self.op in ("ne", "nin"):
            text, params = Comparison(self.key, "eq" if self.op == "ne" else "in", self.value).sql()
            return f"NOT {text}", params
        kind, value, params = _operand(self.key)
        if self.op == "eq" or self.op == "in":
            values = self.value if isinstance(self.value, tuple) else (self.value,)
            return _sql_in(kind, value, params, values)
        if self.op in RANGES:
            return f"({kind} IN {_NUMBER_TYPES} AND {value} {_SQL_OPERATORS[self.op]} ?)", [*params, *params, self.value]
        assert isinstance(self.value, str)
        if self.op == "prefix":
            return f"({kind} = 'text' AND substr({value}, 1, ?) = ?)", [*params, *params, len(self.value), self.value]
        loose, exact = _glob(self.value)
        return f"({kind} = 'text' AND {value} GLOB ? AND {value} REGEXP ?)", [*params, *params, loose, *params, exact]

    def matches(self, document: Mapping[str, Any]) -> bool:
        if self.op in ("ne", "nin"):
            return not Comparison(self.key, "eq" if self.op == "ne" else "in", self.value).matches(document)
        found = _lookup(document, self.key)
        if self.op == "eq" or self.op == "in":
            values = self.value if isinstance(self.value, tuple) else (self.value,)
            return any(_kind(found) == _kind(v) and found == v for v in values)
        if self.op in RANGES:
            return _kind(found) == "number" and _PY_OPERATORS[self.op](found, self.value)
        if not isinstance(found, str) or not isinstance(self.value, str):
            return False
        return found.startswith(self.value) if self.op == "prefix" else re.search(_glob(self.value)[1], found) is not None


def parse_filters(value: object) -> Filter | None:
    """Validate a filter in OpenAI's grammar (None: no filter); `InvalidFilter` says what is wrong and where."""
    if value is None:
        return None
    return _parse(value, "filters", 1, _Budget())


class _Budget:
    """Counts leaves and values, so that one filter cannot make an unbounded statement."""

    def __init__(self) -> None:
        self.leaves = self.values = 0

    def spend(self, where: str, values: int) -> None:
        self.leaves, self.values = self.leaves + 1, self.values + values
        if self.leaves > MAX_LEAVES:
            raise InvalidFilter(f"{where}: a filter may hold at most {MAX_LEAVES} comparisons")
        if self.values > MAX_VALUES:
            raise InvalidFilter(f"{where}: a filter may hold at most {MAX_VALUES} values in all")


def _parse(node: object, where: str, depth: int, budget: _Budget) -> Filter:
    if not isinstance(node, Mapping):
        raise InvalidFilter(f'{where}: expected an object such as {{"key": "team", "type": "eq", "value": "a"}}, not {_show(node)}')
    if depth > MAX_DEPTH:
        raise InvalidFilter(f"{where}: filters may nest at most {MAX_DEPTH} levels deep")
    op = node.get("type")
    if op in COMPOUNDS:
        _check_fields(node, where, ("type", "filters"))
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise InvalidFilter(f"{where}.filters: {op} needs a non-empty list of filters, not {_show(children)}")
        return Compound(str(op), tuple(_parse(c, f"{where}.filters[{i}]", depth + 1, budget) for i, c in enumerate(children)))
    if op in COMPARISONS:
        _check_fields(node, where, ("key", "type", "value"))
        key = _key(node.get("key"), f"{where}.key")
        value = _value(key, str(op), node["value"], f"{where}.value")
        budget.spend(where, len(value) if isinstance(value, tuple) else 1)
        return Comparison(key, str(op), value)
    if "type" not in node:
        raise InvalidFilter(f"{where}.type: missing; use one of {', '.join(COMPARISONS + COMPOUNDS)}")
    raise InvalidFilter(f"{where}.type: {_show(op)} is not one of {', '.join(COMPARISONS + COMPOUNDS)}")


def _check_fields(node: Mapping[Any, Any], where: str, fields: tuple[str, ...]) -> None:
    unknown = [str(name) for name in node if name not in fields]
    if unknown:
        raise InvalidFilter(f"{where}: unknown field {_show(unknown[0])}; {node['type']} filters have {', '.join(fields)}")
    missing = [name for name in fields if name not in node]
    if missing:
        raise InvalidFilter(f"{where}.{missing[0]}: missing; {node['type']} filters have {', '.join(fields)}")


def _key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise InvalidFilter(f"{where}: expected a string, not {_show(key)}")
    if not _SAFE_KEY.fullmatch(key):
        raise InvalidFilter(f'{where}: {_show(key)} cannot be used: keys are 1 to 128 printable ASCII characters other than " and \\')
    return key


def _value(key: str, op: str, value: object, where: str) -> Scalar | tuple[Scalar, ...]:
    kind = BUILTINS[key][1] if key in BUILTINS else "any"
    if op in MEMBERSHIP:
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise InvalidFilter(f"{where}: {op} needs a list of 1 to {MAX_LIST} strings, numbers or booleans, not {_show(value)}")
        return tuple(_scalar(key, kind, item, f"{where}[{i}]") for i, item in enumerate(value))
    if op in RANGES:
        return _bound(key, kind, op, value, where)
    if op in PATTERNS:
        if kind not in ("string", "any") or not isinstance(value, str):
            raise InvalidFilter(f"{where}: {op} matches strings: give a string value and a string key, not {key} and {_show(value)}")
        return _text(value, where)
    return _scalar(key, kind, value, where)


def _scalar(key: str, kind: str, value: object, where: str) -> Scalar:
    if kind == "date":
        return _bound(key, kind, "eq", value, where)
    if isinstance(value, str) and kind in ("string", "any"):
        return _text(value, where)
    if isinstance(value, bool) and kind == "any":
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and kind in ("number", "any"):
        return _number(value, where)
    wanted = {"string": "a string", "number": "a number"}.get(kind, "a string, a number or a boolean")
    raise InvalidFilter(f"{where}: {key} takes {wanted}, not {_show(value)}")


def _bound(key: str, kind: str, op: str, value: object, where: str) -> float | int:
    if isinstance(value, int | float) and not isinstance(value, bool) and kind != "string":
        return _number(value, where)
    if isinstance(value, str) and kind in ("date", "any"):
        return _timestamp(value, where)
    if kind == "string":
        raise InvalidFilter(f"{where}: {op} compares numbers and dates, but {key} is a string; use eq, ne, in, nin, prefix or glob")
    wanted = "a number" if kind == "number" else "a number or an ISO 8601 date"
    raise InvalidFilter(f"{where}: {op} on {key} needs {wanted}, not {_show(value)}")


def _number(value: int | float, where: str) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilter(f"{where}: {value} is not a finite number")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise InvalidFilter(f"{where}: {value} is out of range (integers must fit in 64 bits)")
    return value


def _text(value: str, where: str) -> str:
    if not _encodes(value):
        raise InvalidFilter(f"{where}: the string is not valid Unicode text (it holds a lone surrogate)")
    return value


def _timestamp(text: str, where: str) -> float:
    """Unix seconds of an ISO 8601 date or date-time; without a zone, UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidFilter(f'{where}: {_show(text)} is neither a number nor an ISO 8601 date such as "2024-05-01" or "2024-05-01T12:00:00Z"') from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _operand(key: str) -> tuple[str, str, list[object]]:
    """SQL for the kind of the key's value, for the value itself, and the parameters each one takes."""
    if key in BUILTINS:
        column = BUILTINS[key][0]
        return f"typeof({column})", column, []
    # json_type is NULL for a missing key: coalesce keeps every comparison true or false.
    return "coalesce(json_type(d.attributes, ?), 'missing')", "json_extract(d.attributes, ?)", [f'$."{key}"']


def _sql_in(kind: str, value: str, params: list[object], values: tuple[Scalar, ...]) -> Sql:
    """Equality with any of the values, each compared only with document values of its own kind."""
    strings = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if _kind(v) == "number"]
    booleans = [("true" if v else "false") for v in values if isinstance(v, bool)]
    parts: list[str] = []
    args: list[object] = []
    for members, check in ((strings, "= 'text'"), (numbers, f"IN {_NUMBER_TYPES}")):
        if members:
            parts.append(f"({kind} {check} AND {value} IN ({', '.join('?' * len(members))}))")
            args += [*params, *params, *members]
    if booleans:
        parts.append(f"{kind} IN ({', '.join('?' * len(booleans))})")
        args += [*params, *booleans]
    return f"({' OR '.join(parts)})", args


def _lookup(document: Mapping[str, Any], key: str) -> object:
    if key in BUILTINS:
        return document.get(key)
    attributes = document.get("attributes") or {}
    return attributes.get(key)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


@lru_cache(maxsize=256)
def _glob(pattern: str) -> tuple[str, str]:
    """A SQLite GLOB every match satisfies (wildcards may cross "/"), and the exact regular expression."""
    loose: list[str] = []
    exact: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            piece, regex, i = "*", "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            piece, regex, i = "*", ".*", i + 2
        elif pattern[i] in "*?":
            piece, regex, i = pattern[i], "[^/]*" if pattern[i] == "*" else "[^/]", i + 1
        else:
            piece, regex, i = "[[]" if pattern[i] == "[" else pattern[i], re.escape(pattern[i]), i + 1
        loose.append(piece)
        exact.append(regex)
    return "".join(loose), "(?s)\\A" + "".join(exact) + "\\Z"


def _show(value: object) -> str:
    """A value as JSON, for messages (escaped where it would not encode, so the message always does)."""
    try:
        shown = json.dumps(value, ensure_ascii=False)
        return shown if shown.isascii() or _encodes(shown) else json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
