"""Hostile and careless requests on a real server: 4xx in the one error shape, never a 5xx, nothing lost."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from search import Settings
from search.http import create_app

from .conftest import DATA, ServerThread

BIG_ID = 2**63  # one past the largest SQLite INTEGER
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, model_cache: Path) -> Iterator[Path]:
    """A copy of the sample index served with an ingest root, an index root and a damaged named index."""
    tmp = tmp_path_factory.mktemp("hardening")
    shutil.copytree(sample_index, tmp / "default")
    shutil.copytree(sample_index, tmp / "broken")
    manifest = json.loads((tmp / "broken" / "config.json").read_text())
    # A manifest that reads as JSON but holds a version of the wrong type: nothing foresaw this one.
    (tmp / "broken" / "config.json").write_text(json.dumps({**manifest, "format_version": "1"}))
    shutil.copytree(DATA / "sample", tmp / "allowed" / "sample")
    (tmp / "indexes").mkdir()
    settings = Settings(
        index_dir=tmp / "default",
        cache_dir=model_cache,
        index_root=tmp / "indexes",
        ingest_roots=(tmp / "allowed",),
        named_indexes={"broken": tmp / "broken"},
    )
    with ServerThread(create_app(settings)) as running:
        (tmp / "url").write_text(running.url)
        yield tmp


@pytest.fixture
def client(served: Path) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=(served / "url").read_text(), timeout=120) as http:
        yield http


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The body of an error answered in the one shape with this status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"type", "message"} <= set(body["error"]), body
    assert body["error"]["message"]
    return dict(body["error"])


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_ids_past_int64_are_422s(client: httpx.Client) -> None:
    for method in ("GET", "DELETE"):
        assert "document_id" in error_of(client.request(method, f"/documents/{BIG_ID}"), 422)["message"]
    assert "document_id" in error_of(client.patch(f"/documents/{BIG_ID}", json={"attributes": {}}), 422)["message"]
    assert "after" in error_of(client.get("/documents", params={"after": BIG_ID}), 422)["message"]
    assert error_of(client.get(f"/documents/{BIG_ID - 1}"), 404)["type"] == "not_found"


def test_ingest_paths_too_long_or_with_nul_are_422s(client: httpx.Client, served: Path) -> None:
    allowed = served / "allowed"
    assert "not a path" in error_of(client.post("/ingest", json={"path": str(allowed / ("a" * 300))}), 422)["message"]
    assert "NUL" in error_of(client.post("/ingest", json={"path": f"{allowed}/a\x00b"}), 422)["message"]
    assert error_of(client.post("/ingest", json={"path": "x" * 5000}), 422)["type"] == "invalid_request"


def test_an_upload_name_over_255_bytes_is_refused_and_leaves_nothing(client: httpx.Client, served: Path) -> None:
    name = "é" * 130 + ".md"  # 263 bytes in UTF-8
    error = error_of(client.post("/documents", files=[("files", (name, b"# Long\n\nA long name."))]), 422)
    assert "263 bytes" in error["message"] and error["details"][0]["loc"] == ["files", 0]
    uploads = served / "default" / "uploads"
    assert not uploads.exists() or all(any(folder.iterdir()) for folder in uploads.iterdir()), "no empty folder left"


def test_deeply_nested_json_is_a_4xx(client: httpx.Client) -> None:
    files = [("files", ("n.md", b"# N\n\nnested"))]
    message = error_of(client.post("/documents", files=files, data={"attributes": deep(5000)}), 422)["message"]
    assert "attributes" in message and "nested too deeply" in message
    assert "filters" in error_of(client.get("/documents", params={"filters": deep(5000)}), 422)["message"]
    body = '{"query": "x", "filters": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"
    response = client.post("/search", content=body, headers=JSON)
    assert "nested too deeply" in error_of(response, 400)["message"]
    filters = '{"type": "and", "filters": [' * 300 + '{"key": "a", "type": "eq", "value": 1}' + "]}" * 300
    response = client.post("/search", content='{"query": "x", "filters": ' + filters + "}", headers=JSON)
    assert error_of(response, 422)["type"] == "invalid_query"


def test_lone_surrogates_are_refused_before_they_are_stored(client: httpx.Client) -> None:
    """JSON may escape a lone surrogate (`\\ud800`); no UTF-8 answer could carry it back, so it is a 4xx."""
    files = [("files", ("lone.md", b"# Lone\n\nA note about surrogates."))]
    error = error_of(client.post("/documents", files=files, data={"attributes": '{"k": "\\ud800"}'}), 422)
    assert "attributes.k" in error["message"]
    assert not any(
        d["path"].endswith("lone.md") for d in client.get("/documents", params={"limit": 100}).json()["data"]
    )
    body = b'{"model": "all-MiniLM-L6-v2", "input": "caf\\ud800"}'
    response = client.post("/v1/embeddings", content=body, headers=JSON)
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"
    assert client.post("/search", content=b'{"query": "caf\\ud800"}', headers=JSON).status_code == 422


def test_an_unknown_embedding_model_for_a_new_index_is_a_422(client: httpx.Client) -> None:
    error = error_of(client.post("/indexes", json={"name": "fresh", "embedding_model": "nope/nope"}), 422)
    assert "embedding_model" in error["message"] and "local/all-MiniLM-L6-v2" in error["message"]
    assert client.get("/indexes/fresh/stats").status_code == 404, "nothing was created"


def test_the_same_bytes_again_keep_their_document_and_attributes(client: httpx.Client) -> None:
    """Re-uploading keeps the document (id, passages, attributes); attributes given explicitly replace in place."""
    first = send_parking(client, '{"team": "facilities"}')["document"]
    passages = chunks_of(client, "facilities")
    assert passages, "the filtered search finds it"
    again = send_parking(client, None)
    assert again["duplicate"] and again["document"]["id"] == first["id"]
    assert again["document"]["attributes"] == {"team": "facilities"} and chunks_of(client, "facilities") == passages
    moved = send_parking(client, '{"team": "security"}')
    assert moved["duplicate"] and moved["document"]["id"] == first["id"]
    assert moved["document"]["attributes"] == {"team": "security"}
    assert chunks_of(client, "security") == passages, "the same passages: nothing was re-embedded"
    assert chunks_of(client, "facilities") == []
    cleared = send_parking(client, "{}")["document"]
    assert cleared["id"] == first["id"] and cleared["attributes"] == {}


def send_parking(client: httpx.Client, attributes: str | None) -> dict[str, Any]:
    parking = b"# Parking\n\nThe garage opens at seven; badge holders park on level two."
    data = {"attributes": attributes} if attributes is not None else {}
    response = client.post("/documents", files=[("files", ("parking.md", parking))], data=data)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"][0])


def chunks_of(client: httpx.Client, team: str) -> list[int]:
    """The passages a search restricted to one team finds."""
    body = {"query": "where to park", "filters": {"key": "team", "type": "eq", "value": team}}
    return [hit["chunk_id"] for hit in client.post("/search", json=body).json()["results"]]


def test_a_500_is_in_the_error_shape_and_keeps_the_connection(served: Path) -> None:
    """A damaged index fails in a way no code foresaw: a logged 500 in the one shape, the connection kept."""
    host, port = (served / "url").read_text().removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        first = exchange(sock, "GET /indexes/broken/stats")
        second = exchange(sock, "GET /stats")
    assert first[0] == 500 and json.loads(first[1])["error"]["type"] == "internal_error"
    assert second[0] == 200 and json.loads(second[1])["documents"] >= 10, "the same connection serves on"


def exchange(sock: socket.socket, request_line: str) -> tuple[int, bytes]:
    """One request and its whole response on a kept-alive connection: (status, body)."""
    sock.sendall(f"{request_line} HTTP/1.1\r\nhost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers.get("connection") != "close"
    while len(body) < int(headers["content-length"]):
        body += _recv(sock)
    return int(lines[0].split()[1]), body


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    assert chunk, "the server closed the connection"
    return chunk


def test_every_failure_has_the_one_shape(client: httpx.Client) -> None:
    assert "/nope" in error_of(client.get("/nope"), 404)["message"]
    assert error_of(client.put("/search"), 405)["message"] == "PUT is not allowed on /search; use POST"
    garbage = client.post("/documents", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=x"})
    assert "files" in error_of(garbage, 400)["message"]
    assert "kk: not a field" in error_of(client.post("/search", json={"query": "x", "kk": 3}), 422)["message"]
    assert "stream" in error_of(client.post("/ask", json={"question": "x", "stream": 0}), 422)["message"]
    assert "explain" in error_of(client.post("/search", json={"query": "x", "explain": "yes"}), 422)["message"]


def test_v1_errors_come_in_openai_shape(client: httpx.Client) -> None:
    for response in (
        client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "x", "kk": 3}),
        client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2"}),
        client.get("/v1/nope"),
    ):
        assert 400 <= response.status_code < 500
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    kk = client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "x", "kk": 3}).json()["error"]
    assert kk["param"] == "kk" and "not a field" in kk["message"]


def test_ask_takes_query_as_well_as_question(client: httpx.Client) -> None:
    by_question = client.post("/ask", json={"question": "How do plants turn light into energy?"}).json()
    by_query = client.post("/ask", json={"query": "How do plants turn light into energy?"}).json()
    assert by_query["question"] == by_question["question"] and by_query["answer"] == by_question["answer"]
    assert "question" in error_of(client.post("/ask", json={"k": 3}), 422)["message"]
    assert "once" in error_of(client.post("/ask", json={"question": "a", "query": "b"}), 422)["message"]


def test_a_job_that_fails_unexpectedly_fails_alone(client: httpx.Client, served: Path) -> None:
    """The worker survives a failure nothing foresaw: that job is `failed` with the reason, the next one runs."""
    broken = client.post("/indexes/broken/ingest", json={"path": str(served / "allowed" / "sample")})
    after = client.post("/ingest", json={"path": str(served / "allowed" / "sample")})
    assert broken.status_code == after.status_code == 202
    failed = wait(client, broken.json()["id"])
    assert failed["status"] == "failed" and "TypeError" in failed["error"]
    assert wait(client, after.json()["id"])["status"] == "completed", "the next job ran"


def wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (status := client.get(f"/jobs/{job_id}").json())["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return dict(status)


@pytest.mark.parametrize("path", ["/search", "/ask", "/v1/vector_stores", "/v1/embeddings"])
def test_a_body_that_is_not_json_says_so(path: str, client: httpx.Client) -> None:
    """A 422 on our routes (as any invalid request), a 400 in OpenAI's shape under /v1, no field named "10"."""
    reply = client.post(path, content=b'{"query": ', headers={"content-type": "application/json"})
    assert reply.status_code == (400 if path.startswith("/v1/") else 422)
    error = reply.json()["error"]
    assert error.get("param") is None and "details" not in error
    assert "not valid JSON" in error["message"] and "character 10" in error["message"]
