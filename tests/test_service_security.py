"""Keys, limits and metrics on the real app: every route guarded as it should be."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from search import Settings
from search.http import create_app
from search.http.auth import route_access

from .conftest import ServerThread

RW, RO, SCOPED = "rw-key-0123456789abcdef", "ro-key-0123456789abcdef", "scoped-key-0123456789ab"


@pytest.fixture
def secured(sample_index: Path, model_cache: Path, tmp_path: Path) -> Iterator[str]:
    shutil.copytree(sample_index, tmp_path / "default")  # uploads below must not change the shared index
    (tmp_path / "indexes").mkdir()
    settings = Settings(
        index_dir=tmp_path / "default",
        cache_dir=model_cache,
        api_keys=f"{RW},{RO}:ro,{SCOPED}:rw:team",
        index_root=tmp_path / "indexes",
        rate_limit=600,
        max_upload_mb=200_000 / 2**20,
    )
    with ServerThread(create_app(settings)) as server:
        yield server.url


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_every_route_is_guarded_and_writes_need_a_write_key(sample_index: Path, model_cache: Path) -> None:
    table = route_access(create_app(Settings(index_dir=sample_index, cache_dir=model_cache, api_keys=RW)))
    public = {route for route, access in table.items() if access == "public"}
    assert public == {"GET /healthz", "GET /", "GET /ui/{name}"}  # the web page's files hold no data
    writes = {route for route, access in table.items() if access == "write"}
    for prefix in ("", "/indexes/{name}"):
        assert {
            f"POST {prefix}/documents",
            f"PATCH {prefix}/documents/{{document_id}}",
            f"DELETE {prefix}/documents/{{document_id}}",
            f"POST {prefix}/ingest",
        } <= writes
    assert {"POST /indexes", "DELETE /jobs/{job_id}"} <= writes
    assert table["POST /search"] == table["GET /metrics"] == table["POST /v1/embeddings"] == "read"
    assert table["GET /docs"] == table["GET /redoc"] == table["GET /openapi.json"] == "read"
    for prefix in ("", "/indexes/{name}"):
        for route in ("/facets", "/documents/{document_id}/passages", "/documents/{document_id}/file"):
            assert table[f"GET {prefix}{route}"] == "read"


def test_docs_need_a_key_unless_public(sample_index: Path, model_cache: Path) -> None:
    for public in (False, True):
        settings = Settings(index_dir=sample_index, cache_dir=model_cache, api_keys=RW, public_docs=public)
        with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
            for path in ("/docs", "/redoc", "/openapi.json"):
                assert client.get(path).status_code == (200 if public else 401), (path, public)
                assert client.get(path, headers=auth(RW)).status_code == 200
            assert client.get("/stats").status_code == 401, "--public-docs opens the docs, nothing else"
            assert client.get("/openapi.json", headers=auth(RW)).json()["paths"]["/search"]


def test_keys(secured: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="semsearch.access")
    with httpx.Client(base_url=secured, timeout=60) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post("/search", json={"query": "chess"}).status_code == 401
        assert (
            client.post("/search", json={"query": "chess"}, headers=auth("wrong-key-0123456789abcdef")).status_code
            == 401
        )
        assert client.post("/search", json={"query": "chess"}, headers=auth(RO)).status_code == 200
        files = [("files", ("n.md", b"# Note\n\nA note about owls."))]
        assert client.post("/documents", files=files, headers=auth(RO)).status_code == 403
        assert client.post("/search", json={"query": "chess"}, headers=auth(SCOPED)).status_code == 403
        assert client.post("/indexes", json={"name": "team"}, headers=auth(SCOPED)).status_code == 201
        assert client.post("/indexes", json={"name": "other"}, headers=auth(SCOPED)).status_code == 403
        assert client.post("/indexes/team/documents", files=files, headers=auth(SCOPED)).status_code == 201
        names = [i["name"] for i in client.get("/indexes", headers=auth(SCOPED)).json()["data"]]
        assert names == ["team"]
        writable = {
            key: [i["writable"] for i in client.get("/indexes", headers=auth(key)).json()["data"]] for key in (RO, RW)
        }
        assert writable[RO] and not any(writable[RO]), "the page hides uploads and deletes from a read-only key"
        assert writable[RW] and all(writable[RW])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/search" in logged and all(key not in logged for key in (RW, RO, SCOPED))


def test_limits(secured: str) -> None:
    with httpx.Client(base_url=secured, timeout=60, headers=auth(RW)) as client:
        big = [("files", ("big.txt", b"word " * 60_000))]
        response = client.post("/documents", files=big)
        assert response.status_code == 413 and "error" in response.json()
        many = [("files", (f"f{i}.md", b"# x\n\ny")) for i in range(21)]
        assert client.post("/documents", files=many).status_code == 413
        assert client.post("/search", json={"query": "x" * 5000}).status_code == 422
        assert client.post("/search", json={"query": "x", "k": 101}).status_code == 422


def test_rate_limit_per_key(sample_index: Path, model_cache: Path) -> None:
    settings = Settings(index_dir=sample_index, cache_dir=model_cache, api_keys=f"{RW},{RO}:ro", rate_limit=3)
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        codes = [client.get("/stats", headers=auth(RW)).status_code for _ in range(5)]
        assert codes[:3] == [200] * 3 and codes[-1] == 429
        limited = client.get("/stats", headers=auth(RW))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert client.get("/stats", headers=auth(RO)).status_code == 200, "each key has its own budget"


def test_metrics(secured: str) -> None:
    with httpx.Client(base_url=secured, timeout=60, headers=auth(RW)) as client:
        client.post("/search", json={"query": "chess"})
        client.post("/documents", files=[("files", ("m.md", b"# Metrics\n\nA note about counting owls."))])
        text = client.get("/metrics").text
    assert 'semsearch_http_requests_total{method="POST",route="/search",status="200"}' in text
    assert 'semsearch_http_request_duration_seconds_bucket{le="+Inf",route="/search"}' in text  # labels sorted by name
    assert 'semsearch_ingest_documents_total{index="default"} 1' in text
    assert 'semsearch_index_documents{index="default"}' in text


def test_metrics_need_a_key_that_reaches_every_index(secured: str) -> None:
    """A key scoped to one index may not read /metrics, which names every index and its size."""
    with httpx.Client(base_url=secured, timeout=60) as client:
        assert client.post("/indexes", json={"name": "team"}, headers=auth(SCOPED)).status_code == 201
        refused = client.get("/metrics", headers=auth(SCOPED))
        assert refused.status_code == 403 and "index scope" in refused.json()["error"]["message"]
        assert "semsearch_index_documents" not in refused.text
        assert client.get("/metrics", headers=auth(RO)).status_code == 200


def test_limits_are_configurable(sample_index: Path, model_cache: Path) -> None:
    settings = Settings(index_dir=sample_index, cache_dir=model_cache, max_query_chars=20, max_k=5, max_files=1)
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.post("/search", json={"query": "x" * 21}).status_code == 422
        too_many = client.post("/search", json={"query": "chess", "k": 6})
        assert too_many.status_code == 422 and "between 1 and 5" in too_many.json()["error"]["message"]
        assert client.post("/search", json={"query": "chess", "k": 5}).status_code == 200
        two = [("files", ("a.md", b"# a\n\nb")), ("files", ("b.md", b"# b\n\nc"))]
        assert client.post("/documents", files=two).status_code == 413


def test_public_docs_setting_reads_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_PUBLIC_DOCS", "1")
    assert Settings.from_env().public_docs
    monkeypatch.setenv("SEMSEARCH_PUBLIC_DOCS", "0")
    assert not Settings.from_env().public_docs


def test_v1_refusals_reach_openai_clients_in_their_shape(secured: str) -> None:
    import openai

    anonymous = openai.OpenAI(base_url=f"{secured}/v1", api_key="not-a-key-0123456789", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="API key is not valid") as refused:
        anonymous.models.list()
    assert refused.value.code == "unauthorized" and refused.value.type == "invalid_request_error"
    reader = openai.OpenAI(base_url=f"{secured}/v1", api_key=RO, max_retries=0)
    assert [m.id for m in reader.models.list()] == ["all-MiniLM-L6-v2"]
