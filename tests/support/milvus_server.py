"""The embedded Milvus 2.3.5 standalone server (PyPI `milvus`), started once per test session on 127.0.0.1.

Its binaries are unpacked once into ~/.cache/semsearch-tests/milvus-2.3.5/bin (~450 MB, ~10 s the first time);
each session runs in its own directory there (config, logs, data: a fresh server, removed at teardown), so
concurrent sessions never share data. The advertised addresses are loopback, but most of the server's ports
listen on every interface while it runs.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from platformdirs import user_cache_path

from tests.support.milvus import require_pymilvus

VERSION = "2.3.5"
SECTIONS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
START_TIMEOUT = 60.0  # seconds to become healthy once unpacked: 3-5 s usually, 10-20 s on a busy machine
PORT_STEP = 1000  # a retried start looks for free ports this far above the last try
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL (a server with loaded collections may ignore SIGTERM)


def cache_dir() -> Path:
    """Where the server's binaries are kept between sessions."""
    return user_cache_path("semsearch-tests") / f"milvus-{VERSION}"


@contextmanager
def start_lock(base: Path) -> Iterator[None]:
    """One session at a time unpacks and starts a server: each picks free ports by probing, so two starting
    together would pick the same ones (the second server then crashes)."""
    base.mkdir(parents=True, exist_ok=True)
    with (base / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def remove_stale_runs(base: Path) -> None:
    """Delete the directories of sessions that ended without teardown (killed): their owner is gone."""
    for run in base.glob("run-*"):
        try:
            os.kill(int((run / "owner.pid").read_text()), 0)
        except (OSError, ValueError):
            shutil.rmtree(run, ignore_errors=True)


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
    """SIGTERM, then SIGKILL after STOP_GRACE seconds; safe to call twice."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
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
    """One running server: `uri` for pymilvus, `close()` to stop it and remove its data."""

    def __init__(self, base: Path, port_offset: int = 0) -> None:
        from milvus import MilvusServer, MilvusServerConfig

        with start_lock(base):
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
            atexit.register(self.close)
            try:
                with warnings.catch_warnings():
                    # its port probe leaks the socket of a port it could not bind (in use, or in TIME_WAIT)
                    warnings.simplefilter("ignore", ResourceWarning)
                    self.server.start()
                log = self.run_dir / "logs" / "milvus-stderr.log"
                wait_healthy(self.server.server_proc, self.server.webservice_port, log)
            except BaseException:
                self.close()
                raise
        self.process: subprocess.Popen[bytes] = self.server.server_proc
        self.uri = f"http://127.0.0.1:{self.server.listen_port}"

    def close(self) -> None:
        """Stop the server (terminate, then kill) and delete this session's directory."""
        process = self.server.server_proc if hasattr(self, "server") else None
        if process is not None:
            stop(process)
            self.server.stop()  # closes its log files; the process is already gone
        shutil.rmtree(self.run_dir, ignore_errors=True)
        atexit.unregister(self.close)


def start_server(base: Path, tries: int = 3) -> MilvusTestServer:
    """A running server, started again on fresh ports if one dies while starting."""
    for attempt in range(1, tries + 1):
        try:
            return MilvusTestServer(base, port_offset=PORT_STEP * (attempt - 1))
        except StartFailed:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def milvus_server() -> Iterator[str]:
    """The URI of a Milvus 2.3.5 server on 127.0.0.1, shared by the session's tests."""
    require_pymilvus()
    server = start_server(cache_dir())
    try:
        yield server.uri
    finally:
        server.close()
