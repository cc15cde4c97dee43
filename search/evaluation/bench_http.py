"""The HTTP half of `bench-scale`: `semsearch serve` in its own process, timed from another.

The load comes from threads of this process, one keep-alive connection each. They use the
standard library's `http.client`, not httpx: on this machine it took ~0.13 ms of CPU per
request against httpx's ~0.6 ms, CPU the 2 cores would otherwise take from the server (each
run reports the client's CPU per request). The server's CPU time and memory come from /proc.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .beir import percentiles

LOAD = "threads of the bench process, one keep-alive http.client connection each; the server is its own process"
FLOOR_ROUTE = "GET /v1/models"  # a constant reply through the same app, middleware and thread pool as /search
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServeProcess:
    """`semsearch serve --index FOLDER` on a free port of 127.0.0.1, with its startup time."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.folder, self.log = folder, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        command = "from search.cli.main import main; main()"
        args = ["serve", "--index", str(self.folder), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-c", command, *args], stdout=log, stderr=log)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def first_answer(self, query: str, timeout: float = 600.0) -> float:
        """Seconds from the spawn until a search is answered (the cold start)."""
        began = time.perf_counter()
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while time.perf_counter() - began < timeout:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"semsearch serve exited early; see {self.log}")
                try:
                    client.post("/search", json={"query": query}).raise_for_status()
                    return time.perf_counter() - began
                except httpx.TransportError:
                    time.sleep(0.02)
        raise RuntimeError(f"semsearch serve did not answer within {timeout:.0f} s; see {self.log}")

    def rss(self) -> dict[str, int]:
        """The server's resident memory now and at its peak, in bytes: its own and its search workers'."""
        now = peak = 0
        for pid in self._pids():
            fields = dict(line.split(":", 1) for line in _read(pid, "status").splitlines() if ":" in line)
            now, peak = now + _kib(fields.get("VmRSS", "0 kB")), peak + _kib(fields.get("VmHWM", "0 kB"))
        return {"rss_bytes": now, "peak_rss_bytes": peak}

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server and its search workers have used so far."""
        total = 0
        for pid in self._pids():
            fields = _read(pid, "stat").rsplit(")", 1)[1].split() or ["0"] * 13
            total += int(fields[11]) + int(fields[12])
        return total / _CLOCK_TICKS

    def _pids(self) -> list[int]:
        """The server's process and its children (the search workers and multiprocessing's helper)."""
        assert self.process is not None
        pids = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _read(int(entry.name), "stat")
                if stat and int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    pids.append(int(entry.name))
        return pids


def _read(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:  # the process has just ended
        return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _kib(field: str) -> int:
    return int(field.split()[0]) * 1024


def load(server: ServeProcess, requests: Sequence[dict[str, Any] | None], connections: int) -> dict[str, float]:
    """Send `requests` (a /search body, or None for the floor route) over `connections` connections at once.

    Returns p50/p95 latency (ms), throughput (requests/s), the server's CPU use (cores) over
    the run and the client's CPU time per request (ms).
    """
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            _send(server.port, requests[number::connections], latencies[number])
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    cpu, client, began = server.cpu_seconds(), time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu, client = time.perf_counter() - began, server.cpu_seconds() - cpu, time.process_time() - client
    if errors:
        raise errors[0]
    p50, p95 = percentiles([t for part in latencies for t in part])
    return {
        "p50_ms": round(p50, 2),
        "p95_ms": round(p95, 2),
        "req_per_s": round(len(requests) / wall, 1),
        "server_cores": round(cpu / wall, 2),
        "client_cpu_ms": round(client / max(len(requests), 1) * 1000, 3),
    }


def _send(port: int, requests: Sequence[dict[str, Any] | None], latencies: list[float]) -> None:
    """One keep-alive connection sending `requests` in turn, each latency appended in ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for body in requests:
            began = time.perf_counter()
            if body is None:
                connection.request("GET", FLOOR_ROUTE.split()[1])
            else:
                connection.request("POST", "/search", json.dumps(body), {"content-type": "application/json"})
            reply = connection.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"the server answered {reply.status}: {data[:300]!r}")
            latencies.append((time.perf_counter() - began) * 1000)
    finally:
        connection.close()


def recall_at_10(server: ServeProcess, queries: Sequence[str]) -> float | None:
    """Mean overlap of the default dense top 10 with the exact one; None if the server has no `exact`."""
    overlaps = []
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for query in queries:
            body = {"query": query, "k": 10, "mode": "dense"}
            exact = client.post("/search", json={**body, "exact": True})
            if 400 <= exact.status_code < 500:
                return None
            exact.raise_for_status()
            default = client.post("/search", json=body)
            default.raise_for_status()
            truth = {hit["chunk_id"] for hit in exact.json()["results"]}
            found = {hit["chunk_id"] for hit in default.json()["results"]}
            if truth:
                overlaps.append(len(truth & found) / len(truth))
    return round(sum(overlaps) / len(overlaps), 4) if overlaps else None


def visible(server: ServeProcess, word: str) -> bool:
    """Whether a lexical search for `word` finds it in a passage (after an ingest published it)."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        reply = client.post("/search", json={"query": word, "k": 1, "mode": "lexical"})
        reply.raise_for_status()
        return any(word in hit["text"] for hit in reply.json()["results"])
