"""Filters over documents as values: a tree of comparisons that the catalog compiles.

Keys `path`, `type`, `title`, `size`, `pages` and `modified` (the file's mtime) are the
document's own fields; any other key is a user attribute. A string equals only a string,
a number only a number, a boolean only a boolean; `gt`/`gte`/`lt`/`lte` compare numbers.
`ne` and `nin` are the exact negations of `eq` and `in`, so a document without the key
matches them. `prefix` and `glob` (the rule of `indexes.globs`) match strings.

`matches` is the reference in Python; `indexes.filter_sql` gives the same answers in SQL.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .globs import glob_matches

Scalar = str | int | float | bool

EQUALITY, RANGES, MEMBERSHIP, PATTERNS = ("eq", "ne"), ("gt", "gte", "lt", "lte"), ("in", "nin"), ("prefix", "glob")
COMPARISONS = (*EQUALITY, *RANGES, *MEMBERSHIP, *PATTERNS)
COMPOUNDS = ("and", "or")

# The document's own fields and the kind of value each holds; any other key is an attribute.
BUILTIN_KINDS: dict[str, str] = {
    "path": "string",
    "type": "string",
    "title": "string",
    "size": "number",
    "pages": "number",
    "modified": "date",
}
# The catalog's JSON path quotes a key in "..." without escapes, and its JSON escapes
# anything outside printable ASCII, so only these attribute keys can be looked up exactly.
SAFE_KEY = re.compile(r"[ !#-\[\]-~]{1,128}")

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


class Filter(ABC):
    """A valid filter over documents."""

    @abstractmethod
    def matches(self, document: Mapping[str, Any]) -> bool:
        """Whether a document matches: built-in keys at the top level, user ones under "attributes"."""


@dataclass(frozen=True)
class Compound(Filter):
    """All (`and`) or any (`or`) of the inner filters."""

    op: str
    filters: tuple[Filter, ...]

    def matches(self, document: Mapping[str, Any]) -> bool:
        test = all if self.op == "and" else any
        return test(f.matches(document) for f in self.filters)


@dataclass(frozen=True)
class Comparison(Filter):
    """One key compared with a value (a tuple of values for `in`/`nin`), already normalised."""

    key: str
    op: str
    value: Scalar | tuple[Scalar, ...]

    def positive(self) -> Comparison:
        """`eq` for `ne`, `in` for `nin`: the comparison this one negates."""
        return Comparison(self.key, "eq" if self.op == "ne" else "in", self.value)

    def matches(self, document: Mapping[str, Any]) -> bool:
        if self.op in ("ne", "nin"):
            return not self.positive().matches(document)
        found = _lookup(document, self.key)
        if self.op in ("eq", "in"):
            values = self.value if isinstance(self.value, tuple) else (self.value,)
            return any(kind_of(found) == kind_of(v) and found == v for v in values)
        if self.op in RANGES:
            return kind_of(found) == "number" and _OPERATORS[self.op](found, self.value)
        if not isinstance(found, str) or not isinstance(self.value, str):
            return False
        return found.startswith(self.value) if self.op == "prefix" else glob_matches(self.value, found)


def all_of(filters: Sequence[Filter]) -> Filter | None:
    """The filter that every one of `filters` must pass (None when there are none)."""
    if len(filters) <= 1:
        return filters[0] if filters else None
    return Compound("and", tuple(filters))


def kind_of(value: object) -> str:
    """The filter kind of a value: boolean, number, string or other."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _lookup(document: Mapping[str, Any], key: str) -> object:
    if key in BUILTIN_KINDS:
        return document.get(key)
    attributes = document.get("attributes") or {}
    return attributes.get(key)
