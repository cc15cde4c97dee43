"""Connecting to Milvus: Lite files and the 2.3.5 server, version and features, errors that name the URI, retries."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from indexes.errors import IndexBusy, IndexStoreError, StoreUnavailable
from tests.support.milvus import require_pymilvus
from tests.support.milvus_server import EXTERNAL_URI, closed_port  # and the fixture silent_server (a plugin)

pytestmark = pytest.mark.usefixtures("pymilvus_installed")

ROOT = Path(__file__).resolve().parents[1]
# A second process opening the same Lite file: prints what connect() said.
OPEN_LITE = """
import sys
from indexes.errors import IndexStoreError
from indexes.milvus.connection import connect
try:
    connect(sys.argv[1], timeout=30).close()
except IndexStoreError as error:
    print(type(error).__name__, error)
else:
    print("opened")
"""


@pytest.fixture
def pymilvus_installed() -> None:
    require_pymilvus()


def open_elsewhere(path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", OPEN_LITE, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_lite_file_is_the_lite_dialect_with_bm25(tmp_path: Path) -> None:
    from indexes.milvus.connection import Dialect, connect

    connection = connect(str(tmp_path / "milvus.db"), timeout=30)
    try:
        assert connection.dialect is Dialect.LITE
        assert connection.version.text.startswith("milvus_lite-")
        assert connection.version.number >= (3, 2)
        assert connection.supports_bm25
        assert connection.version.lexical_unavailable() is None
    finally:
        connection.close()


def test_a_lite_file_opens_in_one_process_at_a_time_and_close_releases_it(tmp_path: Path) -> None:
    from indexes.milvus.connection import connect

    path = tmp_path / "milvus.db"
    connection = connect(str(path), timeout=30)
    try:
        said = open_elsewhere(path)
    finally:
        connection.close()
    assert said.startswith(IndexBusy.__name__), said
    assert str(path) in said and "another process" in said
    assert open_elsewhere(path) == "opened"


def test_a_path_that_is_not_a_lite_file_says_what_a_uri_is(tmp_path: Path) -> None:
    from indexes.milvus.connection import connect

    with pytest.raises(IndexStoreError, match="neither a server URL"):
        connect(str(tmp_path / "milvus.sqlite"))
    with pytest.raises(IndexStoreError, match="does not exist"):
        connect(str(tmp_path / "missing" / "milvus.db"))


def test_a_refused_port_fails_at_once_naming_the_uri() -> None:
    from indexes.milvus.connection import connect

    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="refused the connection") as raised:
        connect(uri, timeout=60)
    assert uri in str(raised.value) and "is it running" in str(raised.value)
    assert time.monotonic() - started < 60  # it did not wait out the timeout


def test_a_server_that_never_answers_fails_within_the_timeout(silent_server: str) -> None:
    from indexes.milvus.connection import connect

    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            connect(silent_server, timeout=1.0)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "connect() hung on a server that never answers"
    assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable), outcome
    assert f"{silent_server} did not answer within 1 s" in str(outcome[0])


def test_retries_transient_failures_with_backoff_then_gives_up() -> None:
    from indexes.milvus.connection import RetryPolicy, Transient

    slept: list[float] = []
    calls: list[float] = []

    def flaky(left: float) -> str:
        calls.append(left)
        if len(calls) < 3:
            raise Transient(StoreUnavailable("Milvus at http://x is unavailable"))
        return "answer"

    policy = RetryPolicy(delays=(0.2, 0.5, 1.0))
    assert policy.run(flaky, time.monotonic() + 60, sleep=slept.append) == "answer"
    assert slept == [0.2, 0.5] and len(calls) == 3

    def down(left: float) -> str:
        raise Transient(StoreUnavailable("Milvus at http://x is unavailable"))

    slept.clear()
    with pytest.raises(StoreUnavailable, match=r"unavailable \(tried 4 times\)"):
        policy.run(down, time.monotonic() + 60, sleep=slept.append)
    assert slept == [0.2, 0.5, 1.0]


def test_retries_stop_at_the_deadline_and_other_errors_are_not_retried() -> None:
    from indexes.milvus.connection import RetryPolicy, Transient

    slept: list[float] = []

    def down(left: float) -> str:
        raise Transient(StoreUnavailable("Milvus at http://x is unavailable"))

    with pytest.raises(StoreUnavailable, match="unavailable$"):
        RetryPolicy(delays=(5.0,)).run(down, time.monotonic() + 1.0, sleep=slept.append)
    assert slept == []  # a retry would end past the deadline

    calls: list[float] = []

    def broken(left: float) -> str:
        calls.append(left)
        raise IndexStoreError("Milvus at http://x: collection not found")

    with pytest.raises(IndexStoreError, match="collection not found"):
        RetryPolicy().run(broken, time.monotonic() + 60, sleep=slept.append)
    assert len(calls) == 1 and slept == []


def test_milvus_2_3_server_is_detected_without_bm25(milvus_server: str) -> None:
    from indexes.milvus.connection import Dialect, connect

    if EXTERNAL_URI is not None:
        pytest.skip(f"checks the Milvus 2.3.5 test server, not {EXTERNAL_URI} (SEMSEARCH_MILVUS_TEST_URI)")

    connection = connect(milvus_server, timeout=30)
    try:
        assert connection.dialect is Dialect.SERVER
        assert connection.version.text.startswith("v2.3.")
        assert connection.version.number == (2, 3)
        assert not connection.supports_bm25
        reason = connection.version.lexical_unavailable()
        assert reason is not None
        assert "2.5" in reason and "falls back to dense only" in reason and connection.version.text in reason
    finally:
        connection.close()


def test_server_round_trip_reads_its_own_writes(milvus_server: str) -> None:
    from indexes.milvus.connection import connect

    connection = connect(milvus_server, timeout=30)
    name = f"connection_smoke_{time.monotonic_ns()}"
    try:
        connection.call("create_collection", name, dimension=4, consistency_level="Strong")
        rows = [{"id": i, "vector": [float(i), 1.0, 0.0, 0.5], "tag": f"t{i % 2}"} for i in range(1, 7)]
        assert connection.call("upsert", name, rows)["upsert_count"] == 6
        connection.call("upsert", name, [{"id": 3, "vector": [3.0, 1.0, 0.0, 0.5], "tag": "changed"}])
        got = connection.call("query", name, filter="id > 0", output_fields=["id", "tag"], consistency_level="Strong")
        assert sorted((row["id"], row["tag"]) for row in got) == [
            (1, "t1"),
            (2, "t0"),
            (3, "changed"),
            (4, "t0"),
            (5, "t1"),
            (6, "t0"),
        ]
        connection.call("delete", name, filter='tag == "t0"', retry=False)
        left = connection.call("query", name, filter="id > 0", output_fields=["id"], consistency_level="Strong")
        assert sorted(row["id"] for row in left) == [1, 3, 5]
    finally:
        connection.call("drop_collection", name)
        connection.close()


def test_an_error_from_the_server_names_the_uri(milvus_server: str) -> None:
    from indexes.milvus.connection import connect

    connection = connect(milvus_server, timeout=30)
    try:
        with pytest.raises(IndexStoreError) as raised:
            connection.call("query", "no_such_collection", filter="id > 0")
        assert not isinstance(raised.value, StoreUnavailable)
        assert str(raised.value).startswith(f"Milvus at {milvus_server}: ")
        assert "no_such_collection" in str(raised.value)
    finally:
        connection.close()


# A second session holding the test server's lock, as a session with a running server does.
HOLD_LOCK = """
import sys, time
from pathlib import Path
from tests.support.milvus_server import ServerLock
lock = ServerLock(Path(sys.argv[1]), say=print)
print("held", flush=True)
sys.stdin.readline()
lock.release()
time.sleep(60)
"""


def test_a_second_session_waits_for_the_test_servers_lock_saying_who_holds_it(tmp_path: Path) -> None:
    from tests.support.milvus_server import ServerLock

    command = [sys.executable, "-c", HOLD_LOCK, str(tmp_path)]
    with subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdin is not None
            assert holder.stdout.readline().strip() == "held"
            said: list[str] = []
            with pytest.raises(TimeoutError, match=f"another session \\(process {holder.pid} .*still runs after 0.5 s"):
                ServerLock(tmp_path, said.append, wait_limit=0.5)
            assert len(said) == 1 and f"process {holder.pid}" in said[0] and "waiting for" in said[0]
            holder.stdin.write("release\n")
            holder.stdin.flush()
            lock = ServerLock(tmp_path, said.append, wait_limit=60)  # the holder let go: this session goes on
            assert (tmp_path / "server.lock").read_text().startswith(f"{os.getpid()} ")
            lock.release()
            lock.release()
        finally:
            holder.kill()


# --- the edges: each store error as HTTP (the one error shape) and as a CLI exit ---------------


def _edge_app(silent: str) -> Any:
    """An app with the API's error handlers whose routes fail as a Milvus store does."""
    from fastapi import FastAPI

    from indexes import Comparison
    from indexes.errors import LexicalUnavailable
    from indexes.milvus.connection import Dialect, ServerVersion, connect
    from indexes.milvus.filter_expr import MAX_IDS, expression
    from search.http.error_shapes import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/down")
    @app.get("/v1/down")
    def down() -> None:
        connect(f"http://127.0.0.1:{closed_port()}", timeout=30)

    @app.get("/silent")
    def silent_route() -> None:
        connect(silent, timeout=1.0)

    @app.get("/glob")
    def glob() -> None:
        expression(Comparison("path", "glob", "docs/**"), Dialect.SERVER, lambda c: range(MAX_IDS + 1))

    @app.get("/lexical")
    def lexical() -> None:
        raise LexicalUnavailable(ServerVersion.parse("v2.3.5-lite", Dialect.SERVER).lexical_unavailable())

    return app


def test_store_errors_answer_503_with_retry_after_and_422_saying_what_to_do(silent_server: str) -> None:
    import httpx

    from search.http.server import ServerThread

    with ServerThread(_edge_app(silent_server)) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        down = http.get("/down")
        assert down.status_code == 503 and down.headers["retry-after"] == "5"
        assert down.json()["error"]["type"] == "store_unavailable"
        assert "refused the connection: is it running?" in down.json()["error"]["message"]
        openai = http.get("/v1/down")  # OpenAI's shape under /v1/, same status and header
        assert openai.status_code == 503 and openai.headers["retry-after"] == "5"
        assert openai.json()["error"]["code"] == "store_unavailable"
        assert openai.json()["error"]["type"] == "server_error"
        silent = http.get("/silent")
        assert silent.status_code == 503 and silent.headers["retry-after"] == "5"
        assert f"{silent_server} did not answer within 1 s" in silent.json()["error"]["message"]
        glob = http.get("/glob")
        assert glob.status_code == 422 and "retry-after" not in glob.headers
        assert glob.json()["error"]["type"] == "filter_too_broad"
        assert "narrow it" in glob.json()["error"]["message"]
        lexical = http.get("/lexical")
        assert lexical.status_code == 422 and lexical.json()["error"]["type"] == "lexical_unavailable"
        assert "search in dense or hybrid mode" in lexical.json()["error"]["message"]


def test_the_cli_says_a_store_error_in_one_line_and_exits_1(silent_server: str) -> None:
    import click
    from click.testing import CliRunner

    from indexes.milvus.connection import connect
    from search.cli.common import errors

    @click.command()
    @click.argument("uri")
    @errors
    def open_store(uri: str) -> None:
        connect(uri, timeout=1.0)

    for uri, said in [(f"http://127.0.0.1:{closed_port()}", "refused the connection"), (silent_server, "within 1 s")]:
        result = CliRunner().invoke(open_store, [uri])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"Error: Milvus at {uri} ") and said in result.stderr
        assert result.stderr.count("\n") == 1 and not result.stdout
