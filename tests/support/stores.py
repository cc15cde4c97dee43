"""The `store` fixture: a behavioural test written once runs on the local store and on Milvus Lite.

A test that takes `store` creates its index with `open_index(..., store=store)` (or `create_store` with a
manifest naming it) and reopens it with `open_store`, so nothing in it knows which store it talks to.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from indexes import Index, Manifest, create_store

from .milvus import require_pymilvus

DATA = Path(__file__).parent.parent / "data"

STORES = ["local", "milvus"]
STORE_IDS = ["local", "milvus-lite"]


@pytest.fixture(params=STORES, ids=STORE_IDS)
def store(request: pytest.FixtureRequest) -> str:
    """ "local" or "milvus" (a Milvus Lite file in the index folder); Milvus skips without pymilvus."""
    if request.param == "milvus":
        require_pymilvus()
    return str(request.param)


@pytest.fixture(scope="session")
def milvus_sample_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """The sample folder ingested once into a Milvus Lite index; tests only read it (as `sample_index`)."""
    from ingest import Folders, ingest, open_index

    require_pymilvus()
    folder = tmp_path_factory.mktemp("sample-milvus") / "ix"
    index, chunking = open_index(folder, embedder, None, store="milvus")
    try:
        ingest(index, embedder, Folders([DATA / "sample"]), chunking=chunking)
    finally:
        index.close()
    return folder


@pytest.fixture(scope="module", params=STORES, ids=STORE_IDS)
def sample_in_store(request: pytest.FixtureRequest) -> Path:
    """The sample index in each store, in turn (module-scoped: a module's tests share each index)."""
    name = "sample_index" if request.param == "local" else "milvus_sample_index"
    return Path(request.getfixturevalue(name))


def make_index(folder: Path, manifest: Manifest, store: str) -> Index:
    """A new, empty index at `folder` in `store`."""
    if store == "milvus":
        manifest = replace(manifest, store="milvus", format_version=3)
    return create_store(folder, manifest)
