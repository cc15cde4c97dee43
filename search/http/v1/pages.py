"""OpenAI's cursor pages, one rule for every `/v1` list: `limit`, `order`, `after`, `before`, `has_more`.

Objects stand at a position, (creation time, id), ascending or descending by `order`. A cursor names
an object; when that object has been deleted since (a script deleting what it lists, page by page),
the position it stood at is remembered for a while, so the next page still starts after it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..error_shapes import BadParam

T = TypeVar("T")
Position = tuple[Any, ...]  # (creation time, ..., id): the id last

_GONE_KEPT = 10_000  # positions of deleted objects remembered, the oldest forgotten first
_gone: OrderedDict[tuple[str, str], Position] = OrderedDict()
_gone_lock = threading.Lock()


def forget(scope: str, position: Position) -> None:
    """Remember where a deleted object stood in the list `scope`, so a cursor naming it still works."""
    with _gone_lock:
        _gone[(scope, position[-1])] = position
        _gone.move_to_end((scope, position[-1]))
        while len(_gone) > _GONE_KEPT:
            _gone.popitem(last=False)


def cursor_page(
    items: Sequence[T],
    *,
    scope: str,
    position: Callable[[T], Position],
    limit: int,
    order: str,
    after: str | None = None,
    before: str | None = None,
    keep: Callable[[T], bool] | None = None,
) -> tuple[list[T], bool]:
    """Up to `limit` of `items` (those `keep` keeps) after `after` and before `before`; and whether more follow.

    Cursors are placed among all the items, kept or not, so a filter never loses one.
    """
    known = {position(item)[-1]: position(item) for item in items}
    descending = order == "desc"
    low = _where(scope, after, "after", known)
    high = _where(scope, before, "before", known)

    def inside(item: T) -> bool:
        at = position(item)
        if low is not None and not (at < low if descending else at > low):
            return False
        if high is not None and not (at > high if descending else at < high):
            return False
        return keep is None or keep(item)

    window = sorted((item for item in items if inside(item)), key=position, reverse=descending)
    data = window[-limit:] if before is not None and after is None else window[:limit]
    return data, len(window) > limit


def list_object(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's list object around a page of objects."""
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": has_more}


def _where(scope: str, cursor: str | None, field: str, known: dict[str, Position]) -> Position | None:
    if cursor is None:
        return None
    found = known.get(cursor)
    if found is None:
        with _gone_lock:
            found = _gone.get((scope, cursor))
    if found is None:
        raise BadParam(f"{field}: no object with id {cursor!r} in this list (use an id from a previous page)", field)
    return found
