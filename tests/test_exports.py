"""Each package's `__all__` lists exactly its public names."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["ingest", "indexes", "search", "search.http", "search.cli"])
def test_all_matches_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {n for n in vars(module) if not n.startswith("_") and not _is_submodule(module, n) and n != "annotations"}
    assert set(module.__all__) == public


def _is_submodule(module: object, name: str) -> bool:
    return type(getattr(module, name)).__name__ == "module"
