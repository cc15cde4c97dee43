"""The HTTP API on a real uvicorn server on 127.0.0.1, driven with httpx."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest import Folders, ingest, open_index
from search import Settings
from search.http import create_app

from .conftest import DATA, ServerThread


@pytest.fixture(scope="module")
def index_dir(sample_index: Path) -> Path:
    return sample_index


@pytest.fixture(scope="module")
def server(index_dir: Path, model_cache: Path) -> Iterator[ServerThread]:
    app = create_app(Settings(index_dir=index_dir, cache_dir=model_cache))
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def test_search(client: httpx.Client) -> None:
    response = client.post("/search", json={"query": "who invented the printing press", "k": 3})
    assert response.status_code == 200
    data = response.json()
    assert data["query"] == "who invented the printing press" and data["mode"] == "hybrid"
    assert len(data["results"]) == 3
    assert {"chunk_id", "document_id", "path", "title", "page", "text", "score"} <= set(data["results"][0])
    assert data["results"][0]["path"].endswith("printing-press.html")


def test_search_modes_and_explain(client: httpx.Client) -> None:
    for mode in ("dense", "lexical", "hybrid"):
        data = client.post("/search", json={"query": "chess bishop", "mode": mode, "k": 2, "explain": True}).json()
        assert data["mode"] == mode and data["results"][0]["path"].endswith("chess-rules.html")
        assert data["results"][0]["explain"]


def test_search_min_score_filters_on_the_0_to_1_score(client: httpx.Client) -> None:
    body = {"query": "who invented the printing press", "k": 10, "explain": True}
    every = client.post("/search", json=body).json()["results"]
    kept = client.post("/search", json={**body, "min_score": 0.5}).json()["results"]
    assert all(0 <= r["score"] <= 1 and "fused" in r["explain"] for r in every)
    assert 0 < len(kept) < len(every) and kept == [r for r in every if r["score"] >= 0.5]
    assert client.post("/search", json={**body, "min_score": 2}).status_code == 422


def test_ask(client: httpx.Client) -> None:
    data = client.post("/ask", json={"question": "How do plants turn light into energy?"}).json()
    assert data["mode"] == "extractive" and data["answer"] and data["citations"]
    assert data["citations"][0]["path"].endswith("photosynthesis.md")


def test_health_and_stats(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    stats = client.get("/stats").json()
    assert stats["documents"] == 10 and stats["embedding_model"] == "local/all-MiniLM-L6-v2"
    assert stats["index_type"] == "auto" and stats["size_bytes"] > 0
    assert [(s["kind"], s["storage"], s["tombstones"]) for s in stats["segments"]] == [("flat", "f32", 0)]


def test_openapi_docs(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/ask", "/healthz", "/stats"} <= set(paths)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"query": "   "}, "empty"),
        ({"query": ""}, "query"),
        ({"query": "x", "k": 0}, "k"),
        ({"query": "x", "k": 1000}, "k"),
        ({"query": "x", "mode": "fuzzy"}, "mode"),
        ({"k": 3}, "query"),
    ],
)
def test_bad_requests_get_422_saying_what_to_fix(client: httpx.Client, body: dict[str, object], fragment: str) -> None:
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]


def test_malformed_json_is_a_422(client: httpx.Client) -> None:
    response = client.post("/search", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "error" in response.json()


def test_missing_index_is_a_404_and_health_says_unavailable(tmp_path: Path, model_cache: Path) -> None:
    app = create_app(Settings(index_dir=tmp_path / "none", cache_dir=model_cache))
    with ServerThread(app) as running, httpx.Client(base_url=running.url) as http:
        response = http.post("/search", json={"query": "x"})
        assert response.status_code == 404
        assert "semsearch ingest" in response.json()["error"]["message"]
        assert http.get("/healthz").status_code == 503


def test_searches_during_an_ingest_see_a_consistent_index(tmp_path: Path, embedder, model_cache: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    shutil.copytree(DATA / "sample", folder)
    index, chunking = open_index(tmp_path / "ix", embedder, None)
    ingest(index, embedder, Folders([folder / "chess-rules.html"]), chunking=chunking)
    app = create_app(Settings(index_dir=tmp_path / "ix", cache_dir=model_cache))
    failures: list[str] = []
    counts: set[int] = set()
    done = threading.Event()

    def searcher(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while not done.is_set():
                response = http.post("/search", json={"query": "chess board pieces", "k": 100, "mode": "lexical"})
                if response.status_code != 200:
                    failures.append(response.text)
                    return
                counts.add(len({r["path"] for r in response.json()["results"]}))

    with ServerThread(app) as running:
        threads = [threading.Thread(target=searcher, args=(running.url,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            ingest(index, embedder, Folders([folder]), chunking=chunking)
        finally:
            done.set()
            for thread in threads:
                thread.join()
        final = httpx.post(
            f"{running.url}/search", json={"query": "chess board pieces", "k": 100, "mode": "lexical"}
        ).json()
    assert not failures, failures
    assert counts, "the searches ran"
    assert len({r["path"] for r in final["results"]}) > 1
    before, after = 1, len({r["path"] for r in final["results"]})
    assert counts <= {before, after}, f"a search saw a half-published index: {counts}"
