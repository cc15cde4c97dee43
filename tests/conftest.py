"""Shared fixtures: a clean environment, the real local model, real servers on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from search.http.server import ServerThread, free_port

__all__ = ["DATA", "SHARED_DATASETS", "ServerThread", "free_port"]
pytest_plugins = [
    "tests.support.milvus_server",  # the session's `milvus_server` fixture (Milvus 2.3.5)
    "tests.support.stores",  # `store`: a test run on the local store and on Milvus Lite
]

DATA = Path(__file__).parent / "data"
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SEMSEARCH_* or OPENAI_* variable of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("SEMSEARCH_", "OPENAI_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the built model, shared by the whole session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(model_cache: Path):  # type: ignore[no-untyped-def]
    """The real embedded default model (ONNX Runtime), built once per session."""
    from ingest import DEFAULT_EMBEDDING_MODEL, make_embedder

    return make_embedder(DEFAULT_EMBEDDING_MODEL, cache_dir=model_cache)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """The sample folder ingested once with the local model; tests only read it."""
    from ingest import Folders, ingest, open_index

    folder = tmp_path_factory.mktemp("sample-index") / "ix"
    index, chunking = open_index(folder, embedder, None)
    ingest(index, embedder, Folders([DATA / "sample"]), chunking=chunking)
    index.close()
    return folder


@pytest.fixture
def run(model_cache: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`run("search", "x", ...)`: the semsearch CLI in process, with the session's model cache."""
    from click.testing import CliRunner

    from search.cli import cli

    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke
