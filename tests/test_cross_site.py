"""The guards against other sites' pages on a real server: another site's page cannot write, this server's own
can; a server on loopback answers only to the names it is given (DNS rebinding)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ingest import open_index
from search import Settings
from search.http import create_app
from search.http.origins import host_name, normalized

from .conftest import ServerThread, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, embedder) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server over an empty index, allowing one other origin to write."""
    tmp = tmp_path_factory.mktemp("guard")
    open_index(tmp / "ix", embedder, None)[0].close()
    settings = Settings(index_dir=tmp / "ix", cache_dir=model_cache, allowed_origins=("https://app.example.org",))
    with ServerThread(create_app(settings)) as running:
        yield running.url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=120) as client:
        yield client


def test_another_sites_page_cannot_write(server: str, client: httpx.Client) -> None:
    note = [("files", ("guarded.md", b"# Guarded\n\nA note about cranes."))]
    evil = client.post("/documents", files=note, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    error = evil.json()["error"]
    assert error["type"] == "cross_site_forbidden" and "https://evil.example" in error["message"]
    assert "--allowed-origin" in error["message"] and "SEMSEARCH_ALLOWED_ORIGINS" in error["message"]
    listed = client.get("/documents", headers={"Origin": "https://evil.example"})  # reading is not refused
    assert listed.status_code == 200 and "guarded.md" not in listed.text  # and the refused upload stored nothing
    for method, path in [("DELETE", "/documents/1"), ("PATCH", "/documents/1"), ("POST", "/indexes")]:
        assert client.request(method, path, headers={"Origin": "null"}).status_code == 403, method
    opened = client.post("/v1/files", headers={"Origin": "http://evil.example:8080"}, files=note, data={"purpose": "x"})
    assert opened.status_code == 403 and set(opened.json()["error"]) == {"message", "type", "param", "code"}


def test_own_allowed_and_originless_writes_pass(server: str, client: httpx.Client) -> None:
    own = urlsplit(server)
    for origin in (None, server, f"HTTP://{own.hostname}:{own.port}/", "https://app.example.org:443"):
        headers = {"Origin": origin} if origin else {}
        files = [("files", (f"ok{len(origin or '')}.md", b"# Allowed\n\nA note about storks."))]
        response = client.post("/documents", files=files, headers=headers)
        assert response.status_code == 201, (origin, response.text)
    for method in ("GET", "HEAD", "OPTIONS"):
        assert client.request(method, "/stats", headers={"Origin": "https://evil.example"}).status_code != 403


def test_allowed_origins_are_checked_when_read() -> None:
    assert Settings(allowed_origins="https://a.example, http://b.example:8080/").allowed_origins == (
        "https://a.example",
        "http://b.example:8080",
    )
    for bad in ("a.example", "ftp://a.example", "https://a.example/path", "https://a.example:x"):
        with pytest.raises(ValueError, match="allowed_origins|origin"):
            Settings(allowed_origins=bad)


def test_serve_takes_allowed_origins_from_flags_and_the_environment(
    tmp_path: Path, model_cache: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    open_index(tmp_path / "ix", embedder, None)[0].close()
    flags = ["--allowed-origin", "https://flag.example", "--allowed-host", "search.internal"]
    env = {"SEMSEARCH_CACHE_DIR": str(model_cache), "SEMSEARCH_ALLOWED_ORIGINS": "https://env.example"}
    with _serve(tmp_path / "ix", flags, env) as client:
        origins = ("https://flag.example", "https://env.example", "https://other.example")
        codes = [client.post("/indexes", json={}, headers={"Origin": origin}).status_code for origin in origins]
        port = client.base_url.port
        names = ("search.internal", f"LOCALHOST:{port}", f"127.0.0.1:{port}", f"rebound.example:{port}")
        hosts = [client.get("/healthz", headers={"Host": name}) for name in names]
    assert codes == [422, 422, 403]  # the two allowed reach the route, which finds no name in the body
    assert [r.status_code for r in hosts] == [200, 200, 200, 403]
    assert "rebound.example" in hosts[-1].json()["error"]["message"]


def test_serve_on_loopback_answers_to_localhost_alone_by_default(tmp_path: Path, model_cache: Path) -> None:
    """With no names given, `serve --host 127.0.0.1` refuses a Host naming another site, on every route."""
    with _serve(tmp_path / "ix", [], {"SEMSEARCH_CACHE_DIR": str(model_cache)}) as client:
        port = client.base_url.port
        rebound = {"Host": f"attacker.example:{port}"}
        refused = [client.get(path, headers=rebound) for path in ("/", "/documents", "/v1/models")]
        names = (f"localhost:{port}", f"[::1]:{port}", f"Localhost.:{port}")
        own = [client.get("/documents", headers={"Host": name}) for name in names]
        bare = _http10_without_host(port)
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert refused[1].json()["error"]["type"] == "host_not_allowed"
    assert refused[2].json()["error"]["code"] == "host_not_allowed"  # OpenAI's shape under /v1
    assert "--allowed-host" in refused[1].json()["error"]["message"]
    assert [r.status_code for r in own] == [200, 200, 200]
    assert bare.startswith(b"HTTP/1.1 403") and b"without a Host header" in bare  # HTTP/1.0 needs no Host


def test_allowed_hosts_are_checked_when_read() -> None:
    assert Settings(allowed_hosts="Search.Internal, [::1] ,10.0.0.7").allowed_hosts == (
        "search.internal",
        "::1",
        "10.0.0.7",
    )
    assert Settings(allowed_hosts=["search.internal.", "*"]).allowed_hosts == ("search.internal", "*")
    for bad in ("https://search.internal", "search.internal:8080", "[::1]:8080", "search internal"):
        with pytest.raises(ValueError, match="not a host name"):
            Settings(allowed_hosts=bad)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("LocalHost:8000", "localhost"),
        ("localhost.:8000", "localhost"),
        ("[::1]:8000", "::1"),
        ("::1", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("", ""),
        ("evil.example.", "evil.example"),
        ("[::1", "::1"),
    ],
)
def test_the_name_in_a_host_header(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("origin", "seen"),
    [
        ("http://LOCALHOST", "http://localhost:80"),
        ("https://a.example:443/", "https://a.example:443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("http://", None),
        ("http://a:x", None),
        ("file:///etc", None),
        ("chrome-extension://abc", None),
    ],
)
def test_an_origin_compares_by_scheme_host_and_port(origin: str, seen: str | None) -> None:
    assert normalized(origin) == seen


@contextmanager
def _serve(index: Path, flags: list[str], env: dict[str, str]) -> Iterator[httpx.Client]:
    """`semsearch serve` on 127.0.0.1 in its own process, with these flags and variables; a client once it is up."""
    command = [sys.executable, "-c", "from search.cli.main import main; main()", "serve", "--index", str(index)]
    port = free_port()
    flags = ["--port", str(port), "--search-workers", "0", *flags]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SEMSEARCH_")} | env
    log = index.parent / "serve.log"
    with log.open("wb") as errors:
        process = subprocess.Popen([*command, *flags], env=environment, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 60
            while not _up(client):
                assert process.poll() is None, f"serve exited: {log.read_text(errors='replace')[-2000:]}"
                assert time.monotonic() < deadline, "serve did not answer /healthz within 60 s"
                time.sleep(0.1)
            yield client
    finally:
        process.terminate()
        process.wait()


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _http10_without_host(port: int) -> bytes:
    """The raw answer to an HTTP/1.0 request that, as HTTP/1.0 allows, sends no Host header."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(b"GET /documents HTTP/1.0\r\n\r\n")
        return b"".join(iter(lambda: connection.recv(65536), b""))
