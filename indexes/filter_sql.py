"""Filters compiled to SQL over `documents d`, values always bound as parameters.

Each expression is true or false, never NULL, so `NOT` is the exact negation; the
answers are those of `Filter.matches` (the tests hold the two together).
"""

from __future__ import annotations

from .filters import RANGES, Comparison, Compound, Filter, Scalar, kind_of

Sql = tuple[str, list[object]]

# The catalog column behind each built-in key.
_COLUMNS = {
    "path": "d.path",
    "type": "d.type",
    "title": "d.title",
    "size": "d.size",
    "pages": "d.pages",
    "modified": "d.mtime",
}
_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NUMBER_TYPES = "('integer', 'real')"
GLOB_FUNCTION = "semsearch_glob"  # registered on every catalog connection (see `catalog.connect`)


def where(f: Filter) -> Sql:
    """A boolean SQL expression over `documents d` and its parameters."""
    if isinstance(f, Compound):
        parts = [where(inner) for inner in f.filters]
        joined = f" {f.op.upper()} ".join(text for text, _ in parts)  # each part is parenthesised
        return f"({joined})", [p for _, params in parts for p in params]
    if isinstance(f, Comparison):
        return _comparison(f)
    raise TypeError(f"not a filter: {f!r}")


def _comparison(c: Comparison) -> Sql:
    if c.op in ("ne", "nin"):
        text, params = _comparison(c.positive())
        return f"NOT {text}", params
    kind, value, params = _operand(c.key)
    if c.op in ("eq", "in"):
        return _sql_in(kind, value, params, c.value if isinstance(c.value, tuple) else (c.value,))
    if c.op in RANGES:
        return f"({kind} IN {_NUMBER_TYPES} AND {value} {_OPERATORS[c.op]} ?)", [*params, *params, c.value]
    assert isinstance(c.value, str)
    if c.op == "prefix":
        return f"({kind} = 'text' AND substr({value}, 1, ?) = ?)", [*params, *params, len(c.value), c.value]
    return f"({kind} = 'text' AND {GLOB_FUNCTION}(?, {value}))", [*params, c.value, *params]


def _operand(key: str) -> tuple[str, str, list[object]]:
    """SQL for the kind of the key's value, for the value itself, and the parameters each one takes."""
    if key in _COLUMNS:
        column = _COLUMNS[key]
        return f"typeof({column})", column, []
    # json_type is NULL for a missing key: coalesce keeps every comparison true or false.
    return "coalesce(json_type(d.attributes, ?), 'missing')", "json_extract(d.attributes, ?)", [f'$."{key}"']


def _sql_in(kind: str, value: str, params: list[object], values: tuple[Scalar, ...]) -> Sql:
    """Equality with any of the values, each compared only with document values of its own kind."""
    strings = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if kind_of(v) == "number"]
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
