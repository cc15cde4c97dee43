"""Errors on every /v1 route come in OpenAI's shape, so the official client raises its typed exceptions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from search import Settings
from search.http import create_app
from search.http.auth import route_access

from .conftest import ServerThread

RW, RO, SCOPED = "rw-key-0123456789abcdef", "ro-key-0123456789abcdef", "scoped-key-0123456789ab"
MODEL = "all-MiniLM-L6-v2"
JSON = "application/json"


@pytest.fixture(scope="module")
def secured(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A served app with keys on: read-write, read-only, and read-write scoped to one index."""
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("errors") / "ix",
        cache_dir=model_cache,
        api_keys=f"{RW},{RO}:ro,{SCOPED}:rw:docs",
        max_upload_mb=0.01,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


@pytest.fixture
def clients(secured: str) -> Iterator[Callable[..., OpenAI]]:
    made: list[OpenAI] = []

    def client(key: str, **options: Any) -> OpenAI:
        made.append(OpenAI(base_url=f"{secured}/v1", api_key=key, max_retries=0, **options))
        return made[-1]

    yield client
    for each in made:
        each.close()


def reads(client: OpenAI) -> list[Callable[[], Any]]:
    """A call on each read route under /v1."""
    return [
        lambda: client.models.list(),
        lambda: client.models.retrieve(MODEL),
        lambda: client.embeddings.create(model=MODEL, input="x"),
        lambda: client.files.list(),
        lambda: client.files.retrieve("file-000000000000000000000000"),
    ]


def writes(client: OpenAI) -> list[Callable[[], Any]]:
    """A call on each route under /v1 that changes data."""
    return [
        lambda: client.files.create(file=("a.txt", b"text"), purpose="user_data"),
        lambda: client.files.delete("file-000000000000000000000000"),
    ]


def test_no_key_or_a_bad_one_is_an_authentication_error(clients: Callable[..., OpenAI]) -> None:
    no_bearer = {"Authorization": "Basic cnctdXNlcjpwdw=="}  # the client always sends a key: replace its header
    for client in (clients("not-a-key-0123456789"), clients(RW, default_headers=no_bearer)):
        for call in reads(client) + writes(client):
            with pytest.raises(openai.AuthenticationError) as refused:
                call()
            assert refused.value.type == "invalid_request_error" and "API key" in refused.value.message


def test_a_read_only_key_writing_is_a_permission_error(clients: Callable[..., OpenAI]) -> None:
    reader = clients(RO)
    for call in writes(reader):
        with pytest.raises(openai.PermissionDeniedError, match="read-only"):
            call()
    assert [m.id for m in reader.models.list()] == [MODEL]
    assert reader.files.list().data is not None  # reading is fine


def test_files_are_server_wide_so_an_index_scoped_key_may_use_them(clients: Callable[..., OpenAI]) -> None:
    scoped = clients(SCOPED)
    made = scoped.files.create(file=("team.txt", b"team notes"), purpose="assistants")
    assert scoped.files.content(made.id).read() == b"team notes"
    assert clients(RW).files.retrieve(made.id).id == made.id
    assert scoped.files.delete(made.id).deleted


def test_unknown_ids_and_models_are_not_found_errors(clients: Callable[..., OpenAI]) -> None:
    client = clients(RW)
    for call in (
        lambda: client.files.retrieve("file-000000000000000000000000"),
        lambda: client.files.retrieve("not-even-an-id"),
        lambda: client.files.content("file-000000000000000000000000"),
        lambda: client.files.delete("file-000000000000000000000000"),
    ):
        with pytest.raises(openai.NotFoundError, match="no file"):
            call()
    with pytest.raises(openai.NotFoundError, match="does not exist") as model:
        client.models.retrieve("gpt-4o")
    assert (model.value.code, model.value.param) == ("model_not_found", "model")
    with pytest.raises(openai.NotFoundError, match="no route"):
        client.get("/nope", cast_to=object)


def test_models_retrieve_names_the_served_model(clients: Callable[..., OpenAI]) -> None:
    client = clients(RO)
    for name in (MODEL, f"sentence-transformers/{MODEL}"):
        model = client.models.retrieve(name)
        assert (model.id, model.object, model.owned_by) == (MODEL, "model", "semsearch")


def test_invalid_requests_are_bad_request_errors_naming_the_field(secured: str, clients: Callable[..., OpenAI]) -> None:
    client = clients(RW)
    with pytest.raises(openai.BadRequestError, match="not a field") as extra:
        client.embeddings.create(model=MODEL, input="x", extra_body={"kk": 3})
    assert extra.value.param == "kk"
    with pytest.raises(openai.BadRequestError) as limit:
        client.files.list(limit=0)
    assert limit.value.param == "limit"
    with pytest.raises(openai.BadRequestError) as order:
        client.files.list(order="sideways")  # type: ignore[arg-type]
    assert order.value.param == "order"
    auth = {"Authorization": f"Bearer {RW}"}
    no_purpose = httpx.post(f"{secured}/v1/files", files={"file": ("a.txt", b"x")}, headers=auth)
    error = no_purpose.json()["error"]
    assert no_purpose.status_code == 400 and error["param"] == "purpose" and error["type"] == "invalid_request_error"
    broken = httpx.post(f"{secured}/v1/embeddings", content=b"{not json", headers={**auth, "content-type": JSON})
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]["message"]


def test_a_body_over_the_limit_is_a_413(clients: Callable[..., OpenAI]) -> None:
    client = clients(RW)
    for call in (
        lambda: client.files.create(file=("big.txt", b"x" * 20_000), purpose="user_data"),
        lambda: client.embeddings.create(model=MODEL, input="word " * 4_000),
    ):
        with pytest.raises(openai.APIStatusError, match="limit") as large:
            call()
        assert large.value.status_code == 413 and large.value.type == "invalid_request_error"


def test_a_spent_rate_budget_is_a_rate_limit_error_with_retry_after(model_cache: Path, tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "ix", cache_dir=model_cache, api_keys=RW, rate_limit=3)
    with ServerThread(create_app(settings)) as server, OpenAI(base_url=f"{server.url}/v1", api_key=RW) as client:
        for _ in range(3):
            client.files.list()
        with pytest.raises(openai.RateLimitError, match="too many requests") as limited:
            client.with_options(max_retries=0).files.list()
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.type == "invalid_request_error" and limited.value.code == "rate_limited"


def v1_routes() -> dict[str, str]:
    """`"METHOD /v1/path" -> read | write` for every /v1 route, path parameters filled with unknown ids."""
    table = route_access(create_app(Settings(index_dir=Path("/nonexistent/ix"), api_keys=RW)))
    filled = {k: v for k, v in table.items() if " /v1/" in k}
    return {re.sub(r"\{[^}]+\}", "nope", route): access for route, access in filled.items()}


def test_every_v1_route_refuses_in_openai_shape(secured: str) -> None:
    routes = v1_routes()
    assert len(routes) >= 20 and "POST /v1/files" in routes
    with httpx.Client(base_url=secured) as http:
        for route, access in routes.items():
            method, path = route.split(" ")
            nobody = http.request(method, path)
            assert nobody.status_code == 401, route
            assert set(nobody.json()["error"]) == {"message", "type", "param", "code"}, route
            if access == "write":
                reader = http.request(method, path, headers={"Authorization": f"Bearer {RO}"})
                assert reader.status_code == 403 and "read-only" in reader.json()["error"]["message"], route


def test_vector_stores_and_responses_raise_typed_errors(clients: Callable[..., OpenAI]) -> None:
    client, reader = clients(RW), clients(RO)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve("no-such-store")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search("no-such-store", query="anything")
    with pytest.raises(openai.PermissionDeniedError, match="read-only"):
        reader.vector_stores.create(name="mine")
    with pytest.raises(openai.BadRequestError) as bad:
        client.vector_stores.list(limit=0)
    assert bad.value.param == "limit"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_nope")
    with pytest.raises(openai.AuthenticationError):
        clients("not-a-key-0123456789").vector_stores.list()
