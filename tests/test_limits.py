"""Request limits: the per-key token bucket (fake clock, then a real server), the body cap, the route checks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI, File, Request, UploadFile

from search.errors import InvalidQuery, RateLimited, RequestRejected, TooLarge
from search.http.auth import ApiKeys, Principal, require
from search.http.error_shapes import handle_rejected
from search.http.limits import Limits, MaxBody, RateLimit
from search.settings import Settings

from .conftest import ServerThread

ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef"
MAX_BYTES = 1000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def retry_after(limit: RateLimit, key: str) -> int:
    with pytest.raises(RateLimited) as caught:
        limit.take(key)
    assert caught.value.status_code == 429
    return int(caught.value.headers["retry-after"])


def test_budget_then_429_with_retry_after_rounded_up() -> None:
    clock = FakeClock()
    limit = RateLimit(3, clock=clock)  # one request every 20 s, bursts of 3
    for _ in range(3):
        limit.take("alice")
    assert retry_after(limit, "alice") == 20
    clock.now += 10.5
    assert retry_after(limit, "alice") == 10  # 9.5 s to go, rounded up
    clock.now += 9.5
    limit.take("alice")
    assert retry_after(limit, "alice") == 20


def test_keys_have_separate_budgets() -> None:
    limit = RateLimit(1, clock=FakeClock())
    limit.take("alice")
    retry_after(limit, "alice")
    limit.take("bob")


def test_zero_is_off_and_slow_rates_still_allow_one() -> None:
    limit = RateLimit(0)
    for _ in range(1000):
        limit.take("alice")
    slow = RateLimit(0.5, clock=FakeClock())  # one request every two minutes
    slow.take("alice")
    assert retry_after(slow, "alice") == 120


def test_idle_full_buckets_are_forgotten() -> None:
    clock = FakeClock()
    limit = RateLimit(60, clock=clock, max_keys=10)
    for n in range(10):
        limit.take(f"client {n}")
    clock.now += 60  # every bucket has refilled
    limit.take("one more")
    assert len(limit._buckets) == 1


def test_route_checks() -> None:
    limits = Limits(max_upload_bytes=2**20, max_files=2)
    limits.check_files(2)
    with pytest.raises(TooLarge, match="3 files in one request; the limit is 2"):
        limits.check_files(3)
    query_limits = Settings(max_query_chars=10, max_k=5).query_limits
    query_limits.check("x" * 10, 5)
    with pytest.raises(InvalidQuery, match="11 characters long; the limit is 10"):
        query_limits.check("x" * 11, 5)
    with pytest.raises(InvalidQuery, match="between 1 and 5, not 6"):
        query_limits.check("x", 6)
    assert Settings().max_k == 100 and Settings().max_upload_bytes == 50 * 2**20


def build_app(keys: ApiKeys, limit: RateLimit) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(RequestRejected, handle_rejected)
    app.add_middleware(MaxBody, max_bytes=MAX_BYTES)

    @app.get("/search")
    def search(principal: Principal = Depends(require(keys, limit=limit))) -> dict[str, str]:
        return {"principal": principal.id}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.post("/files")
    def files(uploads: list[UploadFile] = File(...)) -> dict[str, int]:
        return {"files": len(uploads)}

    @app.post("/json")
    def json_body(body: dict[str, str]) -> dict[str, int]:
        return {"keys": len(body)}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(build_app(ApiKeys.parse(f"{ALICE},{BOB}:ro"), RateLimit(3))) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def test_429_after_the_per_key_budget_over_http(client: httpx.Client) -> None:
    alice = {"Authorization": f"Bearer {ALICE}"}
    for _ in range(3):
        assert client.get("/search", headers=alice).status_code == 200
    refused = client.get("/search", headers=alice)
    assert refused.status_code == 429
    assert refused.headers["retry-after"].isdigit() and 1 <= int(refused.headers["retry-after"]) <= 20
    assert refused.json()["error"]["type"] == "rate_limited"
    assert "retry in" in refused.json()["error"]["message"] and ALICE not in refused.text
    assert client.get("/search", headers={"Authorization": f"Bearer {BOB}"}).status_code == 200  # Bob's own budget
    assert client.get("/search").status_code == 401  # no key: refused before it costs anyone's budget


def test_no_keys_rate_limits_per_client_address() -> None:
    with ServerThread(build_app(ApiKeys(), RateLimit(2))) as running, httpx.Client(base_url=running.url) as http:
        assert [http.get("/search").status_code for _ in range(3)] == [200, 200, 429]


def test_body_under_the_cap_passes(client: httpx.Client) -> None:
    assert client.post("/upload", content=b"x" * MAX_BYTES).json() == {"received": MAX_BYTES}
    chunks = iter([b"x" * 400, b"x" * 400])
    assert client.post("/upload", content=chunks).json() == {"received": 800}


def test_413_from_content_length(client: httpx.Client) -> None:
    response = client.post("/upload", content=b"x" * (MAX_BYTES + 1))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "too_large"
    assert "1,001 bytes; the limit is 1,000 bytes" in response.json()["error"]["message"]


def test_413_from_a_chunked_body(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * 400

    response = client.post("/upload", content=chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {"error": {"type": "too_large", "message": response.json()["error"]["message"]}}
    assert "over 1,000 bytes" in response.json()["error"]["message"]
    assert client.post("/upload", content=b"still served").status_code == 200


@pytest.mark.parametrize("size", [400, 4000])
def test_413_for_parsed_bodies_chunked_or_not(client: httpx.Client, size: int) -> None:
    """FastAPI turns a failed body read into a 400 of its own: the client still gets the 413."""
    payload = b"x" * size
    multipart = (
        b"--b\r\ncontent-disposition: form-data; name=uploads; filename=a.txt\r\n\r\n" + payload + b"\r\n--b--\r\n"
    )
    json = b'{"text": "' + payload + b'"}'
    for path, body, kind in [
        ("/files", multipart, "multipart/form-data; boundary=b"),
        ("/json", json, "application/json"),
    ]:
        for content in (body, iter([body[:300], body[300:]])):
            response = client.post(path, content=content, headers={"content-type": kind})
            assert response.status_code == (200 if size < MAX_BYTES else 413), (path, type(content))
