"""The OpenAPI document says what every route returns: typed bodies, their media types, the one error shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from search import Settings
from search.http import create_app

JSON = "application/json"


@pytest.fixture(scope="module")
def client(sample_index: Path, model_cache: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=sample_index, cache_dir=model_cache))) as client:
        yield client


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def typed(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """A schema that says what is inside: an object with properties, typed items, or a union of those."""
    schema = resolve(document, schema)
    if "anyOf" in schema or "oneOf" in schema:
        return all(typed(document, s) for s in schema.get("anyOf", schema.get("oneOf")))
    if schema.get("type") == "array":
        return typed(document, schema.get("items", {}))
    if schema.get("type") == "object" or "properties" in schema:
        return bool(schema.get("properties"))
    return "type" in schema or "const" in schema or "enum" in schema


def test_every_success_response_has_a_typed_body(document: dict[str, Any]) -> None:
    routes = list(operations(document))
    assert len(routes) >= 25
    for route, operation in routes:
        successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
        assert successes, route
        for code, response in successes.items():
            content = response.get("content")
            assert content, f"{route} {code}: no media type"
            for media_type, body in content.items():
                assert "schema" in body, f"{route} {code} {media_type}: no schema"
                if media_type == JSON:
                    assert typed(document, body["schema"]), f"{route} {code}: an untyped JSON body"


def test_streams_and_metrics_document_their_media_types(document: dict[str, Any]) -> None:
    assert set(document["paths"]["/ask"]["post"]["responses"]["200"]["content"]) == {JSON, "text/event-stream"}
    [metrics] = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics.startswith("text/plain")


def test_errors_are_documented_in_the_one_shape(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's shape, which the app never sends
    for route, operation in operations(document):
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert errors, route
        for code, response in errors.items():
            name = response["content"][JSON]["schema"]["$ref"].rsplit("/", 1)[1]
            assert name in {"ErrorResponse", "OpenAIError", "HealthUnavailable"}, f"{route} {code}: {name}"
        if route != "GET /healthz":
            shape = "/OpenAIError" if route.split()[1].startswith("/v1/") else "/ErrorResponse"
            assert errors["401"]["content"][JSON]["schema"]["$ref"].endswith(shape), route


def test_named_index_routes_declare_their_name(document: dict[str, Any]) -> None:
    named = [(route, op) for route, op in operations(document) if route.split()[1].startswith("/indexes/{name}/")]
    assert len(named) >= 9
    for route, operation in named:
        assert ("name", "path") in {(p["name"], p["in"]) for p in operation.get("parameters", [])}, route


def test_routes_with_a_body_document_the_400_of_one_that_does_not_parse(document: dict[str, Any]) -> None:
    for route, operation in operations(document):
        if "requestBody" in operation:
            assert "400" in operation["responses"], route


def test_search_body_keeps_absent_keys_absent(client: TestClient) -> None:
    plain = client.post("/search", json={"query": "printing press", "k": 2}).json()["results"][0]
    explained = client.post("/search", json={"query": "printing press", "k": 2, "explain": True}).json()["results"][0]
    assert "explain" not in plain and explained["explain"]
    assert set(explained) - set(plain) == {"explain"}
    assert "chat" not in client.get("/stats").json()  # only with a chat model
    assert client.post("/ask", json={"question": "Who invented the printing press?"}).json()["usage"] == {}
