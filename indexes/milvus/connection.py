"""A connection to Milvus (a Lite file or a server URL): its version, dialect and features, errors and retries.

Every pymilvus call goes through `MilvusConnection.call`, the one boundary where Milvus's exceptions become
`IndexStoreError`s naming the URI and what to do, and where transient failures are retried within the timeout.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from indexes.errors import IndexBusy, IndexStoreError, StoreUnavailable

T = TypeVar("T")
BM25_SINCE = (2, 5)  # Milvus servers have BM25 full-text search (and hybrid search) from 2.5
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_REMOTE = ("http://", "https://", "tcp://", "grpc://", "unix:")


class Dialect(enum.Enum):
    """Which engine answers: Milvus Lite (a Python re-implementation) or a Milvus server; expressions differ
    (`filter_expr.expression` takes it), and so do BM25's sign and consistency levels."""

    LITE = "lite"  # Milvus Lite: `in` only on scalar fields, so JSON keys get an `or` chain
    SERVER = "server"  # a server: `in` on JSON keys, one list per kind (an `or` chain for ints mixed with floats)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a transient failure is retried: `delays` between tries, all within one deadline."""

    delays: tuple[float, ...] = (0.2, 0.5, 1.0)

    def run(self, attempt: Callable[[float], T], deadline: float, sleep: Callable[[float], None] = time.sleep) -> T:
        """Call `attempt(seconds left)` until it succeeds, raises a non-transient error or time runs out."""
        tries = 0
        while True:
            try:
                return attempt(max(deadline - time.monotonic(), 0.001))
            except Transient as error:
                if tries >= len(self.delays) or time.monotonic() + self.delays[tries] >= deadline:
                    raise error.final(tries + 1) from error
                sleep(self.delays[tries])
                tries += 1


class Transient(Exception):
    """A failure worth retrying (the server is busy or restarting); `final` is what to raise if it lasts."""

    def __init__(self, error: IndexStoreError) -> None:
        super().__init__(str(error))
        self.error = error

    def final(self, tries: int) -> IndexStoreError:
        """The error to give up with, saying how many times it was tried."""
        return type(self.error)(f"{self.error} (tried {tries} times)" if tries > 1 else str(self.error))


@dataclass(frozen=True)
class ServerVersion:
    """What `get_server_version()` said, parsed: `milvus_lite-3.2.2`, `v2.3.5-lite`, `v2.5.4`."""

    text: str
    dialect: Dialect
    number: tuple[int, int]

    @classmethod
    def parse(cls, text: str, dialect: Dialect) -> ServerVersion:
        """Major and minor from the version text (0.0 when it names none)."""
        found = _VERSION.search(text)
        number = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
        return cls(text, dialect, number)

    @property
    def supports_bm25(self) -> bool:
        """BM25 full-text (sparse Function) and hybrid search: Milvus Lite, and servers from 2.5."""
        return self.dialect is Dialect.LITE or self.number >= BM25_SINCE

    def lexical_unavailable(self) -> str | None:
        """Why lexical search is unavailable here (and what semsearch does instead), or None when it is."""
        if self.supports_bm25:
            return None
        return (
            f"Milvus {self.text} has no BM25 full-text search (it needs Milvus 2.5 or later): "
            "hybrid search falls back to dense only, and lexical search is unavailable "
            "(search in dense or hybrid mode, or move the index to Milvus 2.5 or later)"
        )


def is_remote(uri: str) -> bool:
    """A server URL, as opposed to a Milvus Lite file path."""
    return uri.startswith(_REMOTE)


class MilvusConnection:
    """An open pymilvus `MilvusClient` with the server's version; `call` runs every request through it."""

    def __init__(self, uri: str, client: Any, version: ServerVersion, timeout: float, policy: RetryPolicy) -> None:
        self.uri = uri
        self.client = client
        self.version = version
        self.timeout = timeout
        self.policy = policy

    @property
    def dialect(self) -> Dialect:
        return self.version.dialect

    @property
    def supports_bm25(self) -> bool:
        return self.version.supports_bm25

    def call(self, method: str, *args: Any, timeout: float | None = None, retry: bool = True, **kwargs: Any) -> Any:
        """`client.<method>(*args, **kwargs)` within `timeout` seconds (the connection's by default), errors mapped;
        transient failures retried when `retry` (reads and upserts: calls that are safe to repeat)."""
        seconds = self.timeout if timeout is None else timeout
        function = getattr(self.client, method)

        def attempt(left: float) -> Any:
            with milvus_errors(self.uri, seconds, transient=retry):
                return function(*args, timeout=left, **kwargs)

        return self.policy.run(attempt, time.monotonic() + seconds)

    def close(self) -> None:
        """Close the client; for Milvus Lite also stop its in-process server, which otherwise holds the file,
        once no other connection of this process uses it (Lite runs one server per file, shared)."""
        with milvus_errors(self.uri, self.timeout, transient=False):
            self.client.close()
        if not is_remote(self.uri) and _lite_users(self.uri, -1) == 0:
            release_lite(self.uri)


def connect(
    uri: str, token: str | None = None, timeout: float = 10.0, policy: RetryPolicy | None = None
) -> MilvusConnection:
    """Open `uri` (a Milvus Lite `.db` path or an http(s) server URL) and read its version, within `timeout` s."""
    # gRPC's C core logs a server's keepalive complaints (GOAWAY "too_many_pings") on stderr as errors: they are
    # not, and a failed request is reported by semsearch anyway. A user's own GRPC_VERBOSITY wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from pymilvus import MilvusClient  # 0.8 s to import: only when Milvus is used

    quiet_pymilvus()
    lite = not is_remote(uri)
    if lite:
        _check_lite_path(uri)
    with milvus_errors(uri, timeout, transient=False, lite=lite):
        client = MilvusClient(uri=uri, token=token or "", timeout=timeout)
    try:
        with milvus_errors(uri, timeout, transient=False, lite=lite):
            text = str(client.get_server_version(timeout=timeout))
    except IndexStoreError:
        client.close()
        raise
    version = ServerVersion.parse(text, Dialect.LITE if lite else Dialect.SERVER)
    if lite:
        _lite_users(uri, +1)
    return MilvusConnection(uri, client, version, timeout, policy or RetryPolicy())


_lite_open: dict[str, int] = {}  # Milvus Lite file -> connections of this process open on it
_lite_lock = threading.Lock()


def _lite_users(uri: str, change: int) -> int:
    """Count a connection to a Lite file in (+1) or out (-1); the connections left."""
    key = os.path.realpath(uri)
    with _lite_lock:
        left = max(_lite_open.get(key, 0) + change, 0)
        if left:
            _lite_open[key] = left
        else:
            _lite_open.pop(key, None)
        return left


def quiet_pymilvus() -> None:
    """pymilvus logs every failed request at ERROR with a traceback; semsearch reports the mapped error instead."""
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)  # its "file locked" traceback: IndexBusy says it


def release_lite(uri: str) -> None:
    """Stop Milvus Lite's server for this file so another process may open it (a private API: tolerate its absence)."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    release = getattr(server_manager_instance, "release_server", None)
    if release is not None:
        release(uri)


def _check_lite_path(uri: str) -> None:
    if not uri.endswith(".db"):
        raise IndexStoreError(
            f"Milvus URI {uri!r} is neither a server URL (http(s)://host:port) nor a Lite file (*.db)"
        )
    if not Path(uri).parent.is_dir():
        raise IndexStoreError(f"Milvus Lite file {uri}: the folder {Path(uri).parent} does not exist")


def lite_locked(uri: str) -> bool:
    """Whether another process holds this Milvus Lite file's lock (Lite allows one process per file)."""
    lock = Path(uri) / "LOCK"
    if not lock.exists():
        return False
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            return error.errno in (errno.EAGAIN, errno.EACCES)
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


@contextmanager
def milvus_errors(uri: str, timeout: float, *, transient: bool, lite: bool = False) -> Iterator[None]:
    """Map pymilvus and gRPC failures to `IndexStoreError`s; raise `Transient` for retryable ones when `transient`."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as error:
        mapped, retryable = _map(error, uri, timeout, lite)
        if transient and retryable:
            raise Transient(mapped) from error
        raise mapped from error


def _map(error: Exception, uri: str, timeout: float, lite: bool) -> tuple[IndexStoreError, bool]:
    """The semsearch error for a pymilvus one, and whether trying again may help."""
    status, details = _grpc_status(error)
    message = str(getattr(error, "message", error))
    if lite and "Open local milvus failed" in message:
        if lite_locked(uri):
            return IndexBusy(
                f"the Milvus Lite file {uri} is open in another process (Lite allows one): "
                "stop that process, or use a Milvus server for several"
            ), False
        return IndexStoreError(f"Milvus Lite could not open {uri}: {message}"), False
    if status == "DEADLINE_EXCEEDED":
        return StoreUnavailable(
            f"Milvus at {uri} did not answer within {timeout:g} s: is it running and reachable?"
        ), True
    if status == "UNAVAILABLE" or getattr(error, "code", None) == 2:
        why = "refused the connection" if "refused" in details.lower() else "is unavailable"
        return StoreUnavailable(
            f"Milvus at {uri} {why}: is it running? Check the URI (SEMSEARCH_MILVUS_URI)"
        ), status == "UNAVAILABLE" and why != "refused the connection"
    return IndexStoreError(f"Milvus at {uri}: {message}"), False


def _grpc_status(error: BaseException) -> tuple[str, str]:
    """The gRPC status name and details behind a pymilvus exception ('' when there is none)."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            break
        code = getattr(seen, "code", None)
        if callable(code):
            details = getattr(seen, "details", lambda: "")
            return str(getattr(code(), "name", "")), str(details() or "")
        seen = seen.__cause__ or seen.__context__
    return "", ""
