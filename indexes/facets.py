"""Facets of one snapshot: how many documents have each file type and each attribute value.

Attributes are a JSON object per document (the `attributes` column); SQLite's `json_each` spreads them
into rows, so the counting happens in SQL and only the most frequent keys and values come back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog

FACET_LIMIT = 50  # keys, and values a key, that facets list by default (the page offers them all)
_SCALARS = "('text', 'integer', 'real', 'true', 'false')"  # the JSON types a filter can compare
_PAIRS = f"documents d, json_each(d.attributes) j WHERE j.type IN {_SCALARS}"


@dataclass(frozen=True)
class FacetValue:
    """One value (a string, number or boolean) and how many documents have it."""

    value: str | int | float | bool
    documents: int


@dataclass(frozen=True)
class AttributeFacet:
    """An attribute key's most frequent values, first to last; `more`: some were left out."""

    key: str
    values: list[FacetValue]
    more: bool


@dataclass(frozen=True)
class Facets:
    """The documents, their file types, and their most frequent attribute keys, most documents first."""

    documents: int
    types: list[FacetValue]
    attributes: list[AttributeFacet]
    more_keys: bool = False  # some attribute keys were left out

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `GET /facets`."""
        return {
            "object": "facets",
            "documents": self.documents,
            "types": [vars(t) for t in self.types],
            "attributes": [
                {"key": a.key, "values": [vars(v) for v in a.values], "more": a.more} for a in self.attributes
            ],
            "more_keys": self.more_keys,
        }


def read_facets(catalog: Catalog, limit: int = FACET_LIMIT) -> Facets:
    """At most `limit` attribute keys (those most documents have) and `limit` values a key."""
    documents = int(catalog.value("SELECT count(*) FROM documents"))
    types = catalog.rows("SELECT type, count(*) AS n FROM documents GROUP BY type ORDER BY n DESC, type")
    keys = [
        key
        for key, _ in catalog.rows(
            f"SELECT j.key, count(*) AS n FROM {_PAIRS} GROUP BY j.key ORDER BY n DESC, j.key LIMIT ?", (limit + 1,)
        )
    ]  # one more than asked for: whether some were left out
    values = _values(catalog, keys[:limit], limit)
    attributes = [
        AttributeFacet(key, values.get(key, [])[:limit], len(values.get(key, [])) > limit) for key in keys[:limit]
    ]
    return Facets(documents, [FacetValue(str(t or ""), n) for t, n in types], attributes, len(keys) > limit)


def count_facets(documents: Iterable[tuple[str, Mapping[str, Any]]], limit: int = FACET_LIMIT) -> Facets:
    """`read_facets` over (type, attributes) pairs counted in Python, in the same order: a store without SQL."""
    total, types, keys, values = 0, Counter[str](), Counter[str](), Counter[tuple[str, str, Any]]()
    for kind, pairs in documents:
        total += 1
        types[kind or ""] += 1
        for key, value in pairs.items():
            if (json_type := _json_type(value)) is not None:
                keys[key] += 1
                values[key, json_type, value] += 1
    ranked_keys = sorted(keys, key=lambda key: (-keys[key], key))
    per_key: dict[str, list[tuple[int, str, Any]]] = {}
    for (key, json_type, value), n in values.items():
        per_key.setdefault(key, []).append((n, json_type, value))
    attributes = []
    for key in ranked_keys[:limit]:
        found = sorted(per_key[key], key=lambda item: (-item[0], item[1], item[2]))
        facet_values = [FacetValue(_typed(json_type, value), n) for n, json_type, value in found[:limit]]
        attributes.append(AttributeFacet(key, facet_values, len(found) > limit))
    ranked_types = [FacetValue(t, n) for t, n in sorted(types.items(), key=lambda item: (-item[1], item[0]))]
    return Facets(total, ranked_types, attributes, len(ranked_keys) > limit)


def _json_type(value: Any) -> str | None:
    """SQLite's `json_each` type of a value a filter can compare (None for lists, objects and null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    return "text" if isinstance(value, str) else None


def _values(catalog: Catalog, keys: list[str], limit: int) -> dict[str, list[FacetValue]]:
    """Up to `limit` + 1 values of each key, most documents first (the extra one says there are more)."""
    if not keys:
        return {}
    sql = f"""SELECT key, type, value, n FROM (
            SELECT j.key AS key, j.type AS type, j.value AS value, count(*) AS n,
                row_number() OVER (PARTITION BY j.key ORDER BY count(*) DESC, j.type, j.value) AS place
            FROM {_PAIRS} AND j.key IN ({",".join("?" * len(keys))})
            GROUP BY j.key, j.type, j.value)
        WHERE place <= ? ORDER BY key, place"""
    found: dict[str, list[FacetValue]] = {}
    for key, kind, value, n in catalog.rows(sql, (*keys, limit + 1)):
        found.setdefault(key, []).append(FacetValue(_typed(kind, value), n))
    return found


def _typed(kind: str, value: Any) -> str | int | float | bool:
    """A value as JSON had it: SQLite gives booleans as 1 and 0, and `kind` says which they were."""
    if kind in ("true", "false"):
        return kind == "true"
    if kind == "real":
        return float(value)
    return value if isinstance(value, str | int) else str(value)
