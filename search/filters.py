"""Metadata filters in OpenAI's vector-store grammar, parsed into `indexes` filter values.

    {"key": "team", "type": "eq", "value": "a"}
    {"type": "and", "filters": [{"key": "year", "type": "gte", "value": 2021},
                                {"key": "path", "type": "glob", "value": "docs/**/*.md"}]}

Keys `path`, `type`, `title`, `size`, `pages` and `modified` (the file's mtime) are the
document's own columns; any other key is a user attribute. Comparisons follow OpenAI's
type rules: a string equals only a string, a number only a number, a boolean only a
boolean. `gt`/`gte`/`lt`/`lte` compare numbers; an ISO 8601 date given there (or
anywhere for `modified`) is turned into unix seconds (UTC unless it says otherwise).
`ne` and `nin` are the exact negations of `eq` and `in`, so a document without the key
matches them. Our extensions, for strings: `prefix`, and `glob` with the one glob rule
of `indexes.globs` (also used by `ingest --include/--exclude`): `*` and `?` stay within
one path segment, `**` as a whole segment crosses segments (`**/` also matches no folder
at all), `[...]` is a character class and a backslash escapes the next character.

Parsing validates and normalises; `indexes` compiles the resulting value for the catalog.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from indexes.filters import (
    BUILTIN_KINDS,
    COMPARISONS,
    COMPOUNDS,
    MEMBERSHIP,
    PATTERNS,
    RANGES,
    SAFE_KEY,
    Comparison,
    Compound,
    Scalar,
)
from indexes.filters import Filter as Filter  # re-exported: the value that `parse_filters` returns

from .errors import InvalidFilter

MAX_DEPTH, MAX_LEAVES, MAX_LIST, MAX_VALUES = 20, 100, 1000, 10_000


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
        raise InvalidFilter(
            f'{where}: expected an object such as {{"key": "team", "type": "eq", "value": "a"}}, not {_show(node)}'
        )
    if depth > MAX_DEPTH:
        raise InvalidFilter(f"{where}: filters may nest at most {MAX_DEPTH} levels deep")
    op = node.get("type")
    if op in COMPOUNDS:
        _check_fields(node, where, ("type", "filters"))
        children = node.get("filters")
        if not isinstance(children, list) or not children:
            raise InvalidFilter(f"{where}.filters: {op} needs a non-empty list of filters, not {_show(children)}")
        return Compound(
            str(op), tuple(_parse(c, f"{where}.filters[{i}]", depth + 1, budget) for i, c in enumerate(children))
        )
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
        raise InvalidFilter(
            f"{where}: unknown field {_show(unknown[0])}; {node['type']} filters have {', '.join(fields)}"
        )
    missing = [name for name in fields if name not in node]
    if missing:
        raise InvalidFilter(f"{where}.{missing[0]}: missing; {node['type']} filters have {', '.join(fields)}")


def _key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise InvalidFilter(f"{where}: expected a string, not {_show(key)}")
    if not SAFE_KEY.fullmatch(key):
        raise InvalidFilter(
            f'{where}: {_show(key)} cannot be used: keys are 1 to 128 printable ASCII characters other than " and \\'
        )
    return key


def _value(key: str, op: str, value: object, where: str) -> Scalar | tuple[Scalar, ...]:
    kind = BUILTIN_KINDS.get(key, "any")
    if op in MEMBERSHIP:
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise InvalidFilter(
                f"{where}: {op} needs a list of 1 to {MAX_LIST} strings, numbers or booleans, not {_show(value)}"
            )
        return tuple(_scalar(key, kind, item, f"{where}[{i}]") for i, item in enumerate(value))
    if op in RANGES:
        return _bound(key, kind, op, value, where)
    if op in PATTERNS:
        if kind not in ("string", "any") or not isinstance(value, str):
            raise InvalidFilter(
                f"{where}: {op} matches strings: give a string value and a string key, not {key} and {_show(value)}"
            )
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
        raise InvalidFilter(
            f"{where}: {op} compares numbers and dates, but {key} is a string; use eq, ne, in, nin, prefix or glob"
        )
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
        raise InvalidFilter(
            f"{where}: {_show(text)} is neither a number nor an ISO 8601 date "
            'such as "2024-05-01" or "2024-05-01T12:00:00Z"'
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


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
