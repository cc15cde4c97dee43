"""The requests a Milvus index's writer makes: upserts and deletes by key, scans, and cleaning up after crashes.

Every write is an upsert or a delete, keyed or by expression, so a retried request never duplicates a row.
`repair` and `tidy` are the writer's upkeep: rows of a publish that never committed, staged rows a
committed publish left, and retired rows past their grace period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .connection import MilvusConnection
from .filter_expr import literal
from .meta import Published
from .schema import STAGED, CollectionNames, scan, staged_key

ROWS = 500  # rows per upsert call
PATHS = 100  # paths (or ids) per `in [...]` expression
COMPUTED = ("sparse",)  # a function's output: Milvus computes it from `words`, an upsert must not send it
_PAIR = ["path", "content_hash"]


@dataclass(frozen=True)
class Old:
    """A published document a commit retires."""

    document_id: int
    path: str
    chunks: int
    tokens: int


class Rows:
    """The rows of one index's collections, as its writer changes them."""

    def __init__(
        self, conn: MilvusConnection, names: CollectionNames, before_write: Callable[[], None] = lambda: None
    ) -> None:
        self.conn = conn
        self.names = names
        self.before_write = before_write  # the writer's lease renews itself here (lease.py)
        self.fields = {name: writable_fields(conn, name) for name in (names.chunks, names.documents)}

    def upsert(self, collection: str, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), ROWS):
            self.before_write()
            self.conn.call("upsert", collection, rows[start : start + ROWS])

    def delete_keys(self, collection: str, keys: list[int]) -> None:
        for start in range(0, len(keys), ROWS):
            self.conn.call("delete", collection, ids=keys[start : start + ROWS])

    def get(self, collection: str, keys: list[int], fields: list[str]) -> list[dict[str, Any]]:
        """The rows with these primary keys (those that exist), `ROWS` keys a request."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), ROWS):
            found += self.conn.call("get", collection, ids=keys[start : start + ROWS], output_fields=fields)
        return found

    def scan(self, collection: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        return list(scan(self.conn, collection, expr, fields))

    def batches(self, collection: str, expr: str, fields: list[str]) -> Iterator[list[dict[str, Any]]]:
        """The rows matching `expr`, `ROWS` at a time (a document's passages may not fit in memory at once)."""
        batch: list[dict[str, Any]] = []
        for row in scan(self.conn, collection, expr, fields):
            batch.append(row)
            if len(batch) >= ROWS:
                yield batch
                batch = []
        if batch:
            yield batch

    def visible_at(self, paths: Sequence[str], published: Published) -> list[Old]:
        """The documents at these paths in the `published` state."""
        fields = ["document_id", "path", "chunks", "tokens"]
        if len(paths) > PATHS:  # many paths: one pass over the documents, not a scan per hundred paths
            wanted = set(paths)
            rows = [r for r in self.scan(self.names.documents, published.visible(), fields) if r["path"] in wanted]
        else:
            expr = f"path in [{strings(paths)}] and {published.visible()}" if paths else ""
            rows = self.scan(self.names.documents, expr, fields) if paths else []
        return [Old(int(r["document_id"]), r["path"], int(r["chunks"]), int(r["tokens"])) for r in rows]

    def unstage(self, paths: list[str]) -> None:
        """The staged document rows first, then their passages: a crash between leaves passages without a
        document (vectors the next run reuses), never a staged document missing its passages."""
        for start in range(0, len(paths), PATHS):
            part = paths[start : start + PATHS]
            self.delete_keys(self.names.documents, [staged_key(p) for p in part])
            self.conn.call("delete", self.names.staged, filter=f"path in [{strings(part)}]")

    def drop_staged_beyond(self, counts: Sequence[tuple[str, int]]) -> None:
        """Delete staged passages past each document's last (an earlier, longer version's)."""
        for start in range(0, len(counts), PATHS):
            expr = " or ".join(f"(path == {literal(p)} and ordinal >= {n})" for p, n in counts[start : start + PATHS])
            self.conn.call("delete", self.names.staged, filter=expr)

    def repair(self, published: Published) -> None:
        """Delete rows born after `published` (a publish killed before its commit) and staged documents that
        are published already (a publish killed after its commit, before it deleted them)."""
        generation = published.generation
        self.conn.call("delete", self.names.chunks, filter=f"born > {generation}")
        self.conn.call("delete", self.names.documents, filter=f"born > {generation} and born < {STAGED}")
        staged = self.scan(self.names.documents, f"born == {STAGED}", _PAIR)
        done: set[tuple[str, str]] = set()
        for start in range(0, len(staged), PATHS):
            paths = strings([s["path"] for s in staged[start : start + PATHS]])
            expr = f"path in [{paths}] and {published.visible()}"
            done.update((r["path"], r["content_hash"]) for r in self.scan(self.names.documents, expr, _PAIR))
        self.unstage([s["path"] for s in staged if (s["path"], s["content_hash"]) in done])

    def tidy(self, published: Published, grace: float) -> Published | None:
        """Delete the rows of retirements older than `grace` seconds; the state without them (None if none)."""
        cutoff = time.time() - grace
        old = {i for i, at in enumerate(published.retired_at) if at <= cutoff}
        if not old:
            return None
        for i in sorted(old):
            generation, ids = published.retired[i]
            for start in range(0, len(ids), PATHS):
                expr = f"document_id in [{', '.join(map(str, ids[start : start + PATHS]))}] and born < {generation}"
                self.conn.call("delete", self.names.chunks, filter=expr)
                self.conn.call("delete", self.names.documents, filter=expr)
        keep = [i for i in range(len(published.retired)) if i not in old]
        return replace(
            published,
            retired=tuple(published.retired[i] for i in keep),
            retired_at=tuple(published.retired_at[i] for i in keep),
            published_at=time.time(),  # readers of this row wait for the deletes: no retired row shows again
        )


def writable_fields(conn: MilvusConnection, collection: str) -> list[str]:
    """Every field of a collection that a row upsert takes (not a function's output)."""
    described = conn.call("describe_collection", collection)["fields"]
    return [f["name"] for f in described if f["name"] not in COMPUTED]


def writable(row: dict[str, Any]) -> dict[str, Any]:
    """A row as read, ready to be upserted again."""
    return {k: v for k, v in row.items() if k not in COMPUTED}


def strings(values: Iterable[str]) -> str:
    """String literals for an `in [...]` list."""
    return ", ".join(literal(v) for v in values)
