"""The `published` row of `{prefix}_meta`: what readers see, and the commit point of every publish.

Rows of chunks and documents carry `born`, the generation that published them. A reader takes the row once
(a snapshot at generation P) and adds `visible()` to every query: rows born after P (a publish in progress, or
one killed before its commit) and rows of documents retired at or before P are left out. A writer writes
its rows first, then upserts this one row: one call, all or nothing, so readers see the old state or the new.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .schema import CollectionNames

PUBLISHED = "published"
_DUMMY = [0.0, 0.0]


@dataclass(frozen=True)
class Published:
    """One committed state of the index: its generation, what it retired, its counters and id allocators.

    `retired` lists (generation, document ids): the rows of those documents born before that generation are
    gone from it on (an attribute edit republishes a document under the same id, born in the new
    generation). They stay in the collections, invisible, until `tidy` deletes them after a grace period
    (`retired_at`: when each entry was committed), so readers of older snapshots still find them.
    """

    generation: int = 0
    published_at: float = 0.0
    retired: tuple[tuple[int, tuple[int, ...]], ...] = ()
    next_chunk_id: int = 1
    next_document_id: int = 1
    documents: int = 0
    chunks: int = 0
    tokens: int = 0
    last_ingest: float | None = None
    retired_at: tuple[float, ...] = field(default=())

    def visible(self) -> str:
        """The expression every read of chunks or documents ANDs in: rows of this snapshot only."""
        expression = f"born <= {self.generation}"
        gone = [f"({_members(ids)} and born < {g})" for g, ids in self.retired if ids]
        if gone:
            expression += f" and not ({' or '.join(gone)})"
        return expression

    def consistency(self) -> dict[str, Any]:
        """The consistency kwargs of a data read: it waits until the writes of this commit are visible, no longer.

        Strong would wait for every write (~250 ms per search on a server); Bounded misses fresh rows.
        """
        if self.published_at <= 0:
            return {"consistency_level": "Strong"}
        from pymilvus import utility

        return {
            "consistency_level": "Customized",
            "guarantee_timestamp": utility.mkts_from_unixtime(self.published_at),
        }

    def retired_ids(self) -> set[int]:
        """Every document id with retired rows."""
        return {i for _, ids in self.retired for i in ids}

    def commit(self, **changes: Any) -> Published:
        """The next state: generation + 1, published now, with `changes`."""
        return replace(self, generation=self.generation + 1, published_at=time.time(), **changes)

    def as_json(self) -> dict[str, Any]:
        value = asdict(self)
        value["retired"] = [[g, _runs(ids)] for g, ids in self.retired]  # runs: a bulk re-ingest stays short
        value["retired_at"] = list(self.retired_at)
        return value

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Published:
        known = {name: value[name] for name in cls.__dataclass_fields__ if name in value}
        known["retired"] = tuple((int(g), _ids(runs)) for g, runs in value.get("retired", []))
        known["retired_at"] = tuple(float(t) for t in value.get("retired_at", []))
        return cls(**known)


def read_published(conn: Any, names: CollectionNames) -> Published:
    """The committed state, read with Strong consistency (the one read that must see the latest commit)."""
    rows = conn.call(
        "query", names.meta, filter=f'key == "{PUBLISHED}"', output_fields=["value"], consistency_level="Strong"
    )
    if not rows:
        return Published()
    return Published.from_json(rows[0]["value"])


def write_published(conn: Any, names: CollectionNames, published: Published) -> None:
    """The commit: one upsert of the `published` row."""
    conn.call("upsert", names.meta, [{"key": PUBLISHED, "value": published.as_json(), "_v": _DUMMY}])


def _runs(ids: tuple[int, ...]) -> list[list[int]]:
    """Sorted ids as [first, last] runs of consecutive ids: replaced documents often came in together."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def _ids(runs: list[Any]) -> tuple[int, ...]:
    """The ids of `_runs`' output (a plain id stands for itself)."""
    found: list[int] = []
    for run in runs:
        first, last = (run, run) if isinstance(run, int) else run
        found.extend(range(int(first), int(last) + 1))
    return tuple(found)


def _members(ids: tuple[int, ...]) -> str:
    """`document_id` among these ids: ranges for runs of four or more, an `in` list for the rest."""
    parts: list[str] = []
    singles: list[int] = []
    for first, last in _runs(ids):
        if last - first >= 3:
            parts.append(f"(document_id >= {first} and document_id <= {last})")
        else:
            singles.extend(range(first, last + 1))
    if singles:
        parts.append(f"document_id in [{', '.join(map(str, singles))}]")
    return parts[0] if len(parts) == 1 else f"({' or '.join(parts)})"
