"""Conformance on a Milvus server: what semsearch relies on, checked on the 2.3.5 test server.

With SEMSEARCH_MILVUS_TEST_URI=http://host:19530 the same tests run against that Milvus instead (the README's
manual check of a Milvus >= 2.5: BM25 and hybrid search are then expected to work rather than fall back).
Every collection made here has a fresh `semsearch_conformance_*` name and is dropped afterwards.
"""

from __future__ import annotations

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
from tests.support.milvus_filters import check_random_filters, create_documents, fill

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
