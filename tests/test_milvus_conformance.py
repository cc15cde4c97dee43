"""Conformance on a Milvus server: what semsearch relies on, checked on the 2.3.5 test server.

With SEMSEARCH_MILVUS_TEST_URI=http://host:19530 the same tests run against that Milvus instead (the README's
manual check of a Milvus >= 2.5: BM25 and hybrid search are then expected to work rather than fall back).
Every collection made here has a fresh `semsearch_conformance_*` name and is dropped afterwards.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes.milvus.connection import MilvusConnection
from tests.support.milvus_filters import check_random_filters, create_documents, fill, filterable

from .conftest import DATA

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(milvus_server: str) -> Iterator[MilvusConnection]:
    """One connection to the server for the module's tests."""
    from indexes.milvus.connection import connect

    connection = connect(milvus_server, timeout=60)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def collection(server: MilvusConnection) -> Iterator[str]:
    """A fresh collection name on the server, dropped after the test."""
    name = f"semsearch_conformance_{time.time_ns()}"
    try:
        yield name
    finally:
        server.call("drop_collection", name)


def count(server: MilvusConnection, name: str, **consistency: Any) -> int:
    rows = server.call("query", name, filter="", output_fields=["count(*)"], **consistency)
    return int(rows[0]["count(*)"])


def make_numbered(server: MilvusConnection, name: str, **options: Any) -> None:
    """A collection of rows `id` (INT64 primary key), `tag`, and a 2-d vector."""
    from pymilvus import DataType

    client = server.client
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("tag", DataType.VARCHAR, max_length=64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="IP")
    server.call("create_collection", name, schema=schema, index_params=params, **options)


def numbered(ids: list[int], tag: str) -> list[dict[str, Any]]:
    return [{"id": i, "tag": tag, "v": [1.0, float(i % 7)]} for i in ids]


def test_filters_agree_with_filter_matches_and_the_catalog_on_random_filters(
    server: MilvusConnection, collection: str, tmp_path: Path
) -> None:
    from indexes.milvus.connection import Dialect
    from indexes.milvus.meta import Published

    assert server.dialect is Dialect.SERVER
    create_documents(server.client, collection)
    rng = np.random.default_rng(14)
    records = fill(server.client, rng, collection)
    # Read as the store does, waiting for the writes of the "commit" only (Strong: ~250 ms more per query).
    consistency = Published(generation=1, published_at=time.time()).consistency()
    check_random_filters(server.client, server.dialect, records, tmp_path / "ix", rng, collection, consistency)


def test_query_iterator_returns_rows_in_primary_key_order(server: MilvusConnection, collection: str) -> None:
    """`documents(after, limit)` pages are the first rows of a query iterator: that needs primary-key order."""
    make_numbered(server, collection, consistency_level="Strong")
    ids = random.Random(14).sample(range(1, 1_000_000), 5_000)
    for part in range(5):
        server.call("upsert", collection, numbered(ids[part * 1_000 : (part + 1) * 1_000], "a"))
    ordered = sorted(ids)
    after = ordered[1_234]
    iterator = server.client.query_iterator(
        collection, batch_size=700, filter=f"id > {after}", output_fields=["id"], consistency_level="Strong"
    )
    seen: list[int] = []
    try:
        while batch := iterator.next():
            seen.extend(row["id"] for row in batch)
    finally:
        iterator.close()
    assert seen == ordered[1_235:]


def test_upsert_by_primary_key_never_duplicates(server: MilvusConnection, collection: str) -> None:
    """A retried batch (a timeout after the server applied it) must leave one row per key: the writers upsert."""
    make_numbered(server, collection, consistency_level="Strong")
    server.call("upsert", collection, numbered(list(range(1, 101)), "first"))
    for _ in range(3):  # the same batch again, as a retry after a lost answer would send it
        server.call("upsert", collection, numbered(list(range(51, 151)), "second"))
    assert count(server, collection, consistency_level="Strong") == 150
    rows = server.call("query", collection, filter="id > 0", output_fields=["id", "tag"], consistency_level="Strong")
    assert sorted(r["id"] for r in rows) == list(range(1, 151))
    assert {r["id"] for r in rows if r["tag"] == "second"} == set(range(51, 151))


# Another client writes: inserts rows in batches, then prints the time its last write returned (its commit time).
WRITE_ELSEWHERE = """
import sys, time
from pymilvus import MilvusClient
uri, name, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = MilvusClient(uri=uri, timeout=60)
for start in range(0, rows, 1000):
    batch = [{"id": i + 1, "tag": "fresh", "v": [1.0, float(i % 7)]} for i in range(start, min(rows, start + 1000))]
    client.insert(name, batch, timeout=60)
print(time.time(), flush=True)
client.close()
"""


def test_a_read_with_the_commit_guarantee_timestamp_sees_another_clients_writes(
    server: MilvusConnection, collection: str
) -> None:
    """Design §4.4: a reader passing `Published.consistency()` of a commit sees every row written before it, even
    in a collection whose default level (Bounded) lets a plain read miss fresh rows."""
    from indexes.milvus.meta import Published

    make_numbered(server, collection)  # the server's default consistency: Bounded
    assert count(server, collection, **Published().consistency()) == 0  # read once before: a warm reader
    rows = 5_000
    written = subprocess.run(
        [sys.executable, "-c", WRITE_ELSEWHERE, server.uri, collection, str(rows)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert written.returncode == 0, written.stderr
    published = Published(generation=1, published_at=float(written.stdout.strip()))
    assert published.consistency()["consistency_level"] == "Customized"
    assert count(server, collection, **published.consistency()) == rows


# --- an index on the server through the real pipeline, against the same folder in a local index ---------------

QUERIES = [
    "who invented the printing press",
    "how do plants turn light into sugar",
    "brewing coffee with a french press",
    "what happens when it rains",
    "how does TCP avoid congestion",
    "ancient roman water supply",
    "how the knight moves in chess",
    "a recipe with lentils",
    "nearest neighbour search over embeddings",
    "measuring time before clocks",
]
# Filters through search, the same on both stores: built-in columns, a prefix range, a glob (document ids), an or.
FILTERS = [
    {"key": "type", "type": "eq", "value": "pdf"},
    {"key": "path", "type": "prefix", "value": str(DATA / "sample" / "t")},
    {"key": "type", "type": "in", "value": ["markdown", "html"]},
    {"key": "path", "type": "glob", "value": "**/*-*.txt"},
    {
        "type": "or",
        "filters": [{"key": "size", "type": "gt", "value": 3000}, {"key": "type", "type": "eq", "value": "rst"}],
    },
]


def milvus_options(uri: str) -> Any:
    from indexes import MilvusOptions

    return MilvusOptions(uri=uri, timeout=60)


@pytest.fixture(scope="module")
def server_index(milvus_server: str, tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Path]:
    """The sample folder ingested into an index on the server by the real CLI (its collections dropped at the end):
    `semsearch ingest DATA/sample --index IX --store milvus --milvus-uri URI`."""
    from click.testing import CliRunner

    from indexes import open_store
    from search.cli import cli

    folder = tmp_path_factory.mktemp("milvus-index") / "ix"
    command = [
        "ingest",
        str(DATA / "sample"),
        "--index",
        str(folder),
        "--store",
        "milvus",
        "--milvus-uri",
        milvus_server,
    ]
    result = CliRunner().invoke(cli, command, env={"SEMSEARCH_CACHE_DIR": str(model_cache)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    yield folder
    dropped = open_store(folder, milvus=milvus_options(milvus_server))
    try:
        dropped.drop()
    finally:
        dropped.close()


@pytest.fixture
def opened(server_index: Path, milvus_server: str) -> Iterator[Any]:
    from indexes import open_store

    index = open_store(server_index, milvus=milvus_options(milvus_server))
    try:
        yield index
    finally:
        index.close()


@pytest.fixture
def local(sample_index: Path) -> Iterator[Any]:
    from indexes import open_store

    index = open_store(sample_index)
    try:
        yield index
    finally:
        index.close()


def ranked(index: Any, embedder: Any, query: str, mode: str, filters: Any = None) -> list[tuple[str, int, float]]:
    """The top 10 passages as (path, ordinal, score): chunk ids differ between stores, passages do not."""
    from search.retrieve import search

    hits = search(index, embedder, query, k=10, mode=mode, filters=filters)
    return [(h.path, h.stored.chunk.ordinal, round(h.score, 4)) for h in hits]


def test_dense_search_on_the_server_ranks_as_the_local_index(opened: Any, local: Any, embedder: Any) -> None:
    assert opened.manifest.store == "milvus" and local.manifest.store == "local"
    assert opened.stats().counts.documents == local.stats().counts.documents == len(list((DATA / "sample").iterdir()))
    for query in QUERIES:
        on_server, on_local = ranked(opened, embedder, query, "dense"), ranked(local, embedder, query, "dense")
        assert len(on_server) == 10
        assert [(p, o) for p, o, _ in on_server] == [(p, o) for p, o, _ in on_local], query
        assert [s for _, _, s in on_server] == pytest.approx([s for _, _, s in on_local], abs=1e-3), query


def test_filters_through_search_match_the_local_index(opened: Any, local: Any, embedder: Any) -> None:
    from search import parse_filters

    for raw in FILTERS:
        f = parse_filters(raw)
        for query in QUERIES[:4]:
            on_server = ranked(opened, embedder, query, "dense", f)
            assert on_server and on_server == ranked(local, embedder, query, "dense", f), (raw, query)
            with opened.read() as reader:
                for path in {p for p, _, _ in on_server}:
                    document = reader.document_at(path)
                    assert document is not None and f.matches(filterable(document.record)), (raw, path)


def search_elsewhere(folder: Path, query: str, model_cache: Path) -> list[str]:
    """`semsearch search QUERY --json` in a new process: the paths it finds, best first."""
    command = [sys.executable, "-c", "from search.cli import main; main()", "search", query, "--index", str(folder)]
    result = subprocess.run(
        [*command, "-k", "3", "--mode", "dense", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache)},
    )
    assert result.returncode == 0, result.stderr
    return [hit["path"] for hit in json.loads(result.stdout)["results"]]


def test_another_process_finds_an_ingest_at_once(
    milvus_server: str, tmp_path: Path, embedder: Any, model_cache: Path
) -> None:
    """Read-your-writes across processes: `semsearch search` run right after an ingest returns sees what it
    published (the meta row read Strong, the passages at the commit's guarantee timestamp)."""
    from ingest import Folders, ingest, open_index

    docs, folder = tmp_path / "docs", tmp_path / "ix"
    docs.mkdir()
    (docs / "zeppelin.txt").write_text("Airships were moored to a tall mast; the zeppelin swung with the wind.")
    (docs / "lighthouse.txt").write_text("The lighthouse keeper trimmed the lamp's wick before every storm.")
    index, chunking = open_index(folder, embedder, None, store="milvus", milvus=milvus_options(milvus_server))
    try:
        ingest(index, embedder, Folders([docs]), chunking=chunking)
        found = [Path(p).name for p in search_elsewhere(folder, "lighthouse keeper lamp", model_cache)]
        assert found == ["lighthouse.txt", "zeppelin.txt"]
    finally:
        index.drop()
        index.close()


def test_hybrid_and_lexical_without_bm25_fall_back_saying_why(opened: Any, embedder: Any) -> None:
    """Milvus 2.3 has no BM25: hybrid search is dense search, lexical search is refused with the reason."""
    from indexes.errors import LexicalUnavailable
    from search.retrieve import search

    with opened.read() as reader:
        reason = reader.lexical_unavailable()
    if opened.connection.supports_bm25:  # a Milvus >= 2.5 given by SEMSEARCH_MILVUS_TEST_URI
        assert reason is None
        for query in QUERIES[:3]:
            assert ranked(opened, embedder, query, "lexical") and ranked(opened, embedder, query, "hybrid")
        return
    assert reason is not None and opened.connection.version.text in reason and "2.5" in reason
    for query in QUERIES[:3]:
        assert ranked(opened, embedder, query, "hybrid") == ranked(opened, embedder, query, "dense")
    with pytest.raises(LexicalUnavailable, match="dense or hybrid mode"):
        search(opened, embedder, QUERIES[0], mode="lexical")


def test_lexical_search_without_bm25_is_a_422_over_http_and_exit_1_in_the_cli(
    server: MilvusConnection, server_index: Path, model_cache: Path, run: Any
) -> None:
    import httpx

    from search.http import create_app
    from search.http.server import ServerThread
    from search.settings import Settings

    body = {"query": QUERIES[0], "k": 3, "mode": "lexical"}
    with ServerThread(create_app(Settings(index_dir=server_index, cache_dir=model_cache))) as up:
        response = httpx.post(f"{up.url}/search", json=body, timeout=120)
    result = run("search", QUERIES[0], "--index", str(server_index), "--mode", "lexical")
    if server.supports_bm25:  # a Milvus >= 2.5 given by SEMSEARCH_MILVUS_TEST_URI
        assert response.status_code == 200 and response.json()["results"] and result.exit_code == 0
        return
    assert response.status_code == 422 and response.json()["error"]["type"] == "lexical_unavailable"
    assert server.version.text in response.json()["error"]["message"]
    assert "dense or hybrid mode" in response.json()["error"]["message"]
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: Milvus {server.version.text} has no BM25")


def test_the_api_answers_503_when_the_store_is_down_or_silent(
    server_index: Path, model_cache: Path, silent_server: str
) -> None:
    """Through `semsearch serve`'s app, the server's index at a refused port and at a socket that never answers
    (SEMSEARCH_MILVUS_URI overrides the manifest's URI): a 503 with retry-after within the timeout, never a hang."""
    import httpx

    from search.http import create_app
    from search.http.server import ServerThread
    from search.settings import Settings
    from tests.support.milvus_server import closed_port

    body = {"query": QUERIES[0], "k": 3, "mode": "dense"}
    with ServerThread(create_app(Settings(index_dir=server_index, cache_dir=model_cache))) as up:
        assert httpx.post(f"{up.url}/search", json=body, timeout=120).status_code == 200
    for uri, said in [(f"http://127.0.0.1:{closed_port()}", "refused the connection"), (silent_server, "within 2 s")]:
        settings = Settings(index_dir=server_index, cache_dir=model_cache, milvus_uri=uri, milvus_timeout=2.0)
        with ServerThread(create_app(settings)) as down:
            response = httpx.post(f"{down.url}/search", json=body, timeout=60)
        assert response.status_code == 503 and response.headers["retry-after"] == "5", response.text
        assert response.json()["error"]["type"] == "store_unavailable"
        assert uri in response.json()["error"]["message"] and said in response.json()["error"]["message"]


def test_the_cli_says_the_store_is_down_in_one_line_and_exits_1(
    server_index: Path, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.milvus_server import closed_port

    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("SEMSEARCH_MILVUS_URI", uri)
    result = run("search", QUERIES[0], "--index", str(server_index))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: Milvus at {uri} refused the connection") and result.stderr.count("\n") == 1
