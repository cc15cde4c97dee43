"""The writer's lease in `{prefix}_meta`: a safety net when hosts share one Milvus index.

The write lock is a flock in the index folder, which keeps out writers on the same host only. A writer also
holds the `lease` row (its host, pid, and an expiry it renews as it writes): a writer on another host that
finds a lease not yet expired is refused with IndexBusy instead of allocating the same ids. It is not a lock
(Milvus has no compare-and-set: two hosts starting within one round trip both win) and hosts' clocks must
agree (NTP). On one host a lease whose process is gone (a killed writer) is taken over at once; one whose process lives
(another folder naming the same collections) is refused too.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime

from ..errors import IndexBusy, IndexStoreError
from .connection import MilvusConnection
from .filter_expr import literal
from .schema import CollectionNames

LEASE = "lease"
LEASE_SECONDS = 120.0  # how long a lease lasts without being renewed
RENEW_AFTER = 30.0  # seconds between renewals while a writer writes
_DUMMY = [0.0, 0.0]


class Lease:
    """This writer's claim on the index, for hosts that do not share its folder's lock."""

    def __init__(self, conn: MilvusConnection, names: CollectionNames) -> None:
        self.conn = conn
        self.names = names
        self.host = socket.gethostname()
        self._renewed: float | None = None

    def take(self) -> None:
        """Hold the lease, unless a writer on another host holds it and it has not expired (IndexBusy)."""
        rows = self.conn.call(
            "query", self.names.meta, filter=f'key == "{LEASE}"', output_fields=["value"], consistency_level="Strong"
        )
        held = rows[0]["value"] if rows else None
        if held and _alive_elsewhere(held, self.host) and float(held.get("expires", 0)) > time.time():
            until = datetime.fromtimestamp(float(held["expires"]), UTC).isoformat(timespec="seconds")
            raise IndexBusy(
                f"a writer on {held['host']} (pid {held.get('pid')}) is writing to this Milvus index (its lease "
                f"runs until {until}): one writer at a time, so wait for it to finish"
            )
        self.renew(force=True)

    def renew(self, *, force: bool = False) -> None:
        """Push the expiry on (at most every `RENEW_AFTER` seconds unless `force`)."""
        now = time.monotonic()
        if force or self._renewed is None or now - self._renewed >= RENEW_AFTER:
            value = {"host": self.host, "pid": os.getpid(), "expires": time.time() + LEASE_SECONDS}
            self.conn.call("upsert", self.names.meta, [{"key": LEASE, "value": value, "_v": _DUMMY}])
            self._renewed = now

    def release(self) -> None:
        """Give the lease up (best effort: an unreachable Milvus lets it expire instead)."""
        if self._renewed is None:
            return
        self._renewed = None
        try:
            mine = f'key == "{LEASE}" and value["host"] == {literal(self.host)}'  # not a lease taken over since
            self.conn.call("delete", self.names.meta, filter=mine)
        except IndexStoreError:
            pass


def _alive_elsewhere(held: dict[str, object], host: str) -> bool:
    """Whether the lease's holder may still be writing: another host, or another live process of this one
    (two index folders naming the same collections share no flock)."""
    if held.get("host") != host:
        return True
    pid = held.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # a writer of this host killed without releasing: taken over
    except PermissionError:
        return True
    return True
