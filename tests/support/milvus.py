"""Milvus in tests: pymilvus is an optional extra (`semsearch[milvus]`, part of `[test]`).

Without it the Milvus tests skip, unless SEMSEARCH_REQUIRE_MILVUS=1 (CI) makes them fail. The variable is
read at import, before the suite's `clean_environ` fixture removes every SEMSEARCH_* variable.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRE_MILVUS = os.environ.get("SEMSEARCH_REQUIRE_MILVUS") == "1"


def require_pymilvus() -> None:
    """Skip the calling test when pymilvus is not installed; fail instead when Milvus is required."""
    if importlib.util.find_spec("pymilvus") is not None:
        return
    reason = "pymilvus is not installed: pip install -e '.[milvus]' (or '.[test]') to run the Milvus tests"
    if REQUIRE_MILVUS:
        pytest.fail(f"SEMSEARCH_REQUIRE_MILVUS=1 but {reason}")
    pytest.skip(reason)
