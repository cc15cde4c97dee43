"""API keys: parsing, the 401/403 rules, and keys kept out of logs and error bodies, on a real server."""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from search.errors import Forbidden, KeyConfigError, RequestRejected, Unauthorized
from search.http import auth
from search.http.auth import ANONYMOUS, ApiKeys, Principal, require, route_access, writes
from search.http.error_shapes import handle_rejected
from search.http.metrics import Metrics, MetricsMiddleware

from .conftest import ServerThread

RW = "rw-key-0123456789abcdef"
RO = "ro-key-0123456789abcdef"
DOCS = "docs-key-0123456789abcdef"
SPEC = f"{RW}, {RO}:ro, {DOCS}:rw:docs|wiki"
DEFAULT = "default"


def build_app(keys: ApiKeys) -> FastAPI:
    """A small app shaped like ours: per-index routes at the root and under /indexes/{name}, a few server routes."""
    app = FastAPI()
    app.add_exception_handler(RequestRejected, handle_rejected)
    app.add_middleware(MetricsMiddleware, metrics=Metrics())

    def index_router() -> APIRouter:
        router = APIRouter()

        @router.post("/search")
        def search(principal: Principal = Depends(require(keys))) -> dict[str, str]:
            return {"principal": principal.id}

        @router.post("/documents", dependencies=[Depends(writes)])
        def upload() -> dict[str, str]:
            return {"status": "stored"}

        return router

    app.include_router(index_router(), dependencies=[Depends(require(keys, default_index=DEFAULT))])
    app.include_router(index_router(), prefix="/indexes/{name}", dependencies=[Depends(require(keys))])
    server = APIRouter(dependencies=[Depends(require(keys))])

    @server.get("/jobs")
    def jobs() -> dict[str, list[str]]:
        return {"jobs": []}

    @server.post("/indexes", dependencies=[Depends(require(keys, write=True))])
    def create_index() -> dict[str, str]:
        return {"status": "created"}

    app.include_router(server)

    @app.delete("/reversed", dependencies=[Depends(writes)])  # the marker runs before the guard here
    def reversed_order(principal: Principal = Depends(require(keys))) -> dict[str, str]:
        return {"principal": principal.id}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(build_app(ApiKeys.parse(SPEC))) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# Parsing -----------------------------------------------------------------------------------------


def test_parse_access_and_scope() -> None:
    keys = ApiKeys.parse(SPEC)
    assert len(keys) == 3
    rw = keys.check(f"Bearer {RW}", write=True, index="anything")
    assert rw.write and rw.indexes is None and len(rw.id) == 8 and rw.id not in RW
    assert not keys.check(f"Bearer {RO}", write=False, index=None).write
    assert keys.check(f"bearer  {DOCS} ", write=True, index="wiki").indexes == frozenset({"docs", "wiki"})


def test_no_keys_is_open() -> None:
    keys = ApiKeys.configure(None, None)
    assert len(keys) == 0
    assert keys.check(None, write=True, index="any") is ANONYMOUS
    assert len(ApiKeys.parse(" , ")) == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("short-key", "entry 1 of SEMSEARCH_API_KEYS: the key is shorter than 16"),
        (f"{RW},tiny:ro", "entry 2 of SEMSEARCH_API_KEYS: the key is shorter than 16"),
        (f"{RW}:admin", "entry 1 of SEMSEARCH_API_KEYS: after the key write ':ro' or ':rw'"),
        (f"{RW}:ro:a:b", "entry 1 of SEMSEARCH_API_KEYS: after the key"),
        (f"{RW}:ro:docs|", "an empty index name"),
        ("key with spaces 0123456789", "not visible ASCII"),
        (f"{RW},{RW}:ro", "entry 2 of SEMSEARCH_API_KEYS: the same key as entry 1 of SEMSEARCH_API_KEYS"),
    ],
)
def test_parse_refuses_bad_entries_without_echoing_them(spec: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message) as caught:
        ApiKeys.parse(spec)
    assert isinstance(caught.value, ValueError)
    secrets = {entry.split(":")[0].strip() for entry in spec.split(",")}
    assert not any(secret in str(caught.value) for secret in secrets)


def test_load_file_with_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# the team's keys\n\n{RW}\n{RO}:ro   # the dashboard\n   \n")
    keys = ApiKeys.load(path)
    assert len(keys) == 2
    assert not keys.check(f"Bearer {RO}", write=False, index=None).write


def test_load_file_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{RW}\n# ok so far\ntoo-short\n")
    with pytest.raises(KeyConfigError, match=re.escape(f"line 3 of {path}: the key is shorter")) as caught:
        ApiKeys.load(path)
    assert "too-short" not in str(caught.value)
    with pytest.raises(KeyConfigError, match="cannot read the API keys file"):
        ApiKeys.load(tmp_path / "missing")


def test_configure_merges_both_sources(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{RO}:ro\n")
    assert len(ApiKeys.configure(RW, path)) == 2
    with pytest.raises(
        KeyConfigError, match=re.escape(f"line 1 of {path}: the same key as entry 1 of SEMSEARCH_API_KEYS")
    ):
        ApiKeys.configure(RO, path)


# Checking ----------------------------------------------------------------------------------------


def test_check_rules() -> None:
    keys = ApiKeys.parse(SPEC)
    for header in (
        None,
        "",
        "Bearer",
        "Bearer ",
        f"Basic {RW}",
        RW,
        "Bearer not-a-configured-key-at-all",
        f"Bearer {RW}x",
    ):
        with pytest.raises(Unauthorized):
            keys.check(header, write=False, index=None)
    with pytest.raises(Forbidden, match="read-only"):
        keys.check(f"Bearer {RO}", write=True, index=None)
    with pytest.raises(Forbidden, match="no access to the index 'other'; the indexes it may use: 'docs'"):
        keys.check(f"Bearer {DOCS}", write=False, index="other")
    assert keys.check(f"Bearer {DOCS}", write=False, index=None).id  # a route about no one index


@pytest.mark.parametrize("token", [RW, DOCS, "an-unknown-key-0123456789"])
def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    """Whichever key matches (first, last or none), the token is compared with all of them, by compare_digest."""
    keys = ApiKeys.parse(SPEC)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    with contextlib.suppress(Unauthorized):
        keys.check(f"Bearer {token}", write=False, index=None)
    assert len(compared) == 3
    assert all(len(a) == len(b) == 32 for a, b in compared)  # digests: equal lengths whatever the token


# Over HTTP ---------------------------------------------------------------------------------------


def test_health_is_open_everything_else_needs_a_key(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    for method, path in [
        ("POST", "/search"),
        ("GET", "/jobs"),
        ("POST", "/indexes/docs/search"),
        ("POST", "/documents"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "unauthorized"
    wrong = client.post("/search", headers=bearer("wrong-key-0123456789abcdef"))
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]


def test_read_only_and_read_write_keys(client: httpx.Client) -> None:
    assert client.post("/search", headers=bearer(RO)).status_code == 200
    assert client.get("/jobs", headers=bearer(RO)).status_code == 200
    for path in ("/documents", "/indexes/docs/documents", "/indexes"):
        refused = client.post(path, headers=bearer(RO))
        assert refused.status_code == 403, path
        assert refused.json() == {"error": {"type": "forbidden", "message": refused.json()["error"]["message"]}}
        assert "read-only" in refused.json()["error"]["message"]
        assert client.post(path, headers=bearer(RW)).status_code in (200, 201), path
    assert client.delete("/reversed", headers=bearer(RO)).status_code == 403
    assert client.delete("/reversed", headers=bearer(RW)).status_code == 200


def test_scoped_key_reaches_only_its_indexes(client: httpx.Client) -> None:
    assert client.post("/indexes/docs/search", headers=bearer(DOCS)).status_code == 200
    assert client.post("/indexes/wiki/documents", headers=bearer(DOCS)).status_code == 200
    other = client.post("/indexes/other/search", headers=bearer(DOCS))
    assert other.status_code == 403 and "'other'" in other.json()["error"]["message"]
    assert client.post("/search", headers=bearer(DOCS)).status_code == 403  # the default index is not in its scope
    assert client.get("/jobs", headers=bearer(DOCS)).status_code == 200


def test_routes_answer_with_the_principal_id(client: httpx.Client) -> None:
    principal = ApiKeys.parse(SPEC).check(f"Bearer {RW}", write=False, index=None)
    assert client.post("/search", headers=bearer(RW)).json() == {"principal": principal.id}


def test_keys_never_in_logs_or_error_bodies(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bodies = []
    for key in (RW, RO, DOCS, "wrong-key-0123456789abcdef"):
        for method, path in [
            ("POST", "/search"),
            ("POST", "/documents"),
            ("POST", "/indexes/other/search"),
            ("GET", "/nowhere"),
        ]:
            bodies.append(client.request(method, path, headers=bearer(key)).text)
    access = [r for r in caplog.records if r.name == "semsearch.access"]
    assert len(access) == 16
    everything = "\n".join(bodies + [r.getMessage() for r in caplog.records] + [repr(vars(r)) for r in caplog.records])
    for key in (RW, RO, DOCS, "wrong-key-0123456789abcdef"):
        assert key not in everything
    assert ApiKeys.parse(RW).check(f"Bearer {RW}", write=False, index=None).id in everything  # the id is logged instead


def test_no_keys_configured_means_open() -> None:
    with ServerThread(build_app(ApiKeys())) as running, httpx.Client(base_url=running.url) as http:
        assert http.post("/search").json() == {"principal": "anonymous"}
        assert http.post("/documents").status_code == 200


def test_route_access_table() -> None:
    assert route_access(build_app(ApiKeys.parse(SPEC))) == {
        "POST /search": "read",
        "POST /documents": "write",
        "POST /indexes/{name}/search": "read",
        "POST /indexes/{name}/documents": "write",
        "GET /jobs": "read",
        "POST /indexes": "write",
        "DELETE /reversed": "write",
        "GET /healthz": "public",
    }
