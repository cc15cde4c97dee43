"""The embedded Milvus 2.3.5 standalone server (PyPI `milvus`), started once per test session on 127.0.0.1.

Its binaries are unpacked once into ~/.cache/semsearch-tests/milvus-2.3.5/bin (~450 MB, ~10 s the first time);
each session runs in its own directory there (config, logs, data: a fresh server, removed at teardown). One
server runs per machine at a time: its embedded etcd always binds port 2380, so a second session's server would
crash; a session holds `server.lock` from start to teardown, and another one waits for it (saying so). The
advertised addresses are loopback, but most of the server's ports listen on every interface while it runs.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from platformdirs import user_cache_path

from tests.support.milvus import require_pymilvus

VERSION = "2.3.5"
TEST_URI_VARIABLE = "SEMSEARCH_MILVUS_TEST_URI"
# Read at import, before the suite's `clean_environ` fixture removes every SEMSEARCH_* variable.
EXTERNAL_URI = os.environ.get(TEST_URI_VARIABLE) or None
SECTIONS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
START_TIMEOUT = 60.0  # seconds to become healthy once unpacked: 3-5 s usually, 10-20 s on a busy machine
PORT_STEP = 1000  # a retried start looks for free ports this far above the last try
LOCK_WAIT = 1800.0  # seconds a session waits for another session's server before giving up


def cache_dir() -> Path:
    """Where the server's binaries are kept between sessions."""
    return user_cache_path("semsearch-tests") / f"milvus-{VERSION}"


class ServerLock:
    """The machine's one Milvus test server: held by a session from before its start until after its teardown.

    A second session waits for it (`say` tells the user who holds it, once a minute) rather than starting a
    server whose etcd would find port 2380 taken and crash. A session killed outright releases it with its death.
    """

    def __init__(self, base: Path, say: Callable[[str], None], wait_limit: float = LOCK_WAIT) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.path = base / "server.lock"
        self.handle = self.path.open("a+")
        try:
            self._acquire(say, wait_limit)
        except BaseException:
            self.handle.close()
            raise
        self.handle.truncate(0)
        self.handle.write(f"{os.getpid()} {' '.join(sys.argv)}\n")
        self.handle.flush()

    def _acquire(self, say: Callable[[str], None], wait_limit: float) -> None:
        started = said = time.monotonic()
        if self._try():
            return
        say(f"waiting for the Milvus {VERSION} test server of another session to end ({self.holder()}; one at a time)")
        while not self._try():
            now = time.monotonic()
            if now - started > wait_limit:
                raise TimeoutError(
                    f"the Milvus {VERSION} test server of another session ({self.holder()}) still runs after "
                    f"{wait_limit:g} s: let that session finish or stop it, then run the tests again"
                )
            if now - said >= 60:
                say(f"still waiting for the other session's Milvus test server ({now - started:.0f} s)")
                said = now
            time.sleep(0.5)

    def _try(self) -> bool:
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it: `pid command line`."""
        text = self.path.read_text(errors="replace").strip()
        return f"process {text}" if text else "a process that has not said who it is yet"

    def release(self) -> None:
        """Let the next session start its server; safe to call twice."""
        if not self.handle.closed:
            self.handle.truncate(0)
            self.handle.close()  # closing the file releases the flock


def remove_stale_runs(base: Path) -> None:
    """Delete what sessions killed before their teardown left: their run directory, and their server if it still
    runs (it would hold etcd's port 2380). Called with the server lock held, so no other session's server runs."""
    for run in base.glob("run-*"):
        if _alive(run / "owner.pid", "python"):
            continue
        if (server := _alive(run / "server.pid", "milvus")) is not None:
            os.kill(server, signal.SIGKILL)
        shutil.rmtree(run, ignore_errors=True)


def _alive(pid_file: Path, name: str) -> int | None:
    """The pid in `pid_file` if that process still runs and its command line names `name` (not a reused pid)."""
    try:
        pid = int(pid_file.read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if name.encode() in command else None


def unpack_binaries(base: Path) -> Path:
    """`base/bin` with the server's binaries, unpacked the first time (~10 s)."""
    from milvus import _initialize_data_files

    _initialize_data_files(str(base))  # skips files whose checksum is already there
    return base / "bin"


class StartFailed(RuntimeError):
    """The server died or never became healthy while starting: often a port taken between its probe and its
    bind, or taken on another address (tried again on other ports)."""


def wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the server's /healthz says OK; a server that exits or takes over START_TIMEOUT seconds fails."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            first = min((i for i in (text.find("panic:"), text.find("fatal error:")) if i >= 0), default=0)
            tail = text[first : first + 2500]  # where Go's crash report starts, not the goroutine dumps after it
            raise StartFailed(f"the Milvus {VERSION} test server exited ({process.returncode}) while starting:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if b"OK" in response.read():
                    time.sleep(1.0)  # as the package's own wait does: healthy a moment before it serves requests
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise StartFailed(f"the Milvus {VERSION} test server did not start within {START_TIMEOUT:g} s (logs: {log.parent})")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: its data is thrown away anyway, and SIGTERM often never stops it (or takes 10 s); safe twice."""
    if process.poll() is None:
        process.kill()
    process.wait()


def shift_ports(server: Any, offset: int) -> None:
    """Start every port search `offset` above the defaults: the defaults' ports may be taken on another address,
    which the probe on 127.0.0.1 does not see but the server's bind on every interface does."""
    if offset:
        for key, item in server.config.configurable_items.items():
            if key.endswith("_port") and item[1] is not None:
                item[1] = int(item[1]) + offset
        server.webservice_port += offset


class MilvusTestServer:
    """One running server: `uri` for pymilvus, `close()` to stop it, remove its data and let the next one start."""

    def __init__(self, base: Path, port_offset: int = 0, say: Callable[[str], None] = print) -> None:
        from milvus import MilvusServer, MilvusServerConfig

        self.lock = ServerLock(base, say)
        atexit.register(self.close)
        try:
            bin_dir = unpack_binaries(base)
            remove_stale_runs(base)
            self.run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=base))
            (self.run_dir / "owner.pid").write_text(str(os.getpid()))
            (self.run_dir / "bin").symlink_to(bin_dir, target_is_directory=True)
            self.server: Any = MilvusServer(MilvusServerConfig(), wait_for_started=False)
            self.server.set_base_dir(str(self.run_dir))
            for section in SECTIONS:
                self.server.config.set(f"{section}.ip", "127.0.0.1")
            shift_ports(self.server, port_offset)
            with warnings.catch_warnings():
                # its port probe leaks the socket of a port it could not bind (in use, or in TIME_WAIT)
                warnings.simplefilter("ignore", ResourceWarning)
                self.server.start()
            (self.run_dir / "server.pid").write_text(str(self.server.server_proc.pid))
            log = self.run_dir / "logs" / "milvus-stderr.log"
            wait_healthy(self.server.server_proc, self.server.webservice_port, log)
        except BaseException:
            self.close()
            raise
        self.process: subprocess.Popen[bytes] = self.server.server_proc
        self.uri = f"http://127.0.0.1:{self.server.listen_port}"

    def close(self) -> None:
        """Kill the server, delete this session's directory and release the lock; safe to call twice."""
        server = getattr(self, "server", None)
        if server is not None and server.server_proc is not None:
            stop(server.server_proc)
            server.stop()  # closes its log files; the process is already gone
        if hasattr(self, "run_dir"):
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.lock.release()
        atexit.unregister(self.close)


def start_server(base: Path, tries: int = 3, say: Callable[[str], None] = print) -> MilvusTestServer:
    """A running server, started again on fresh ports if one dies while starting."""
    for attempt in range(1, tries + 1):
        try:
            return MilvusTestServer(base, port_offset=PORT_STEP * (attempt - 1), say=say)
        except StartFailed:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


LAST_USER = pytest.StashKey[str]()  # the session's last test that needs the server
RUNNING = pytest.StashKey[MilvusTestServer]()


@pytest.hookimpl(trylast=True)  # after -k/-m deselection and reordering: the order the tests will run in
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    users = [item.nodeid for item in items if "milvus_server" in getattr(item, "fixturenames", ())]
    if users:
        config.stash[LAST_USER] = users[-1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Stop the server right after the last test that needs it (and its fixtures' teardown), not at the session's
    end: another session waiting for it, and the rest of this one, get the machine back sooner."""
    yield
    server = item.config.stash.get(RUNNING, None)
    if server is not None and item.config.stash.get(LAST_USER, None) == item.nodeid:
        server.close()


@pytest.fixture(scope="session")
def milvus_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """The URI of a Milvus 2.3.5 server on 127.0.0.1 shared by the session's tests (or SEMSEARCH_MILVUS_TEST_URI's)."""
    require_pymilvus()
    if EXTERNAL_URI is not None:
        yield EXTERNAL_URI
        return
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(message: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[milvus_server] {message}", file=sys.stderr, flush=True)

    server = pytestconfig.stash[RUNNING] = start_server(cache_dir(), say=say)
    try:
        yield server.uri
    finally:
        server.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
