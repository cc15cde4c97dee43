"""The layout holds: only `indexes` talks to SQLite and tantivy, and imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported(path: Path) -> set[str]:
    """The top-level package of every module a file imports (relative imports left out)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["ingest", "search"])
@pytest.mark.parametrize("engine", ["sqlite3", "tantivy", "pymilvus", "milvus_lite"])
def test_only_indexes_imports_a_storage_engine(package: str, engine: str) -> None:
    offenders = [str(p.relative_to(ROOT)) for p in modules(package) if engine in imported(p)]
    assert modules(package) and offenders == []


@pytest.mark.parametrize(("package", "forbidden"), [("indexes", {"ingest", "search"}), ("ingest", {"search"})])
def test_imports_point_one_way(package: str, forbidden: set[str]) -> None:
    offenders = [str(p.relative_to(ROOT)) for p in modules(package) if imported(p) & forbidden]
    assert offenders == []
