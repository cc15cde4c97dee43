"""Property-based fuzzing of the served OpenAPI document (schemathesis) against a real server on loopback.

Every operation gets a bounded number of generated requests; each answer must not be a 5xx,
must have a status the document declares for that operation, and must match the declared
media type and schema. The run prints how many requests it sent and how many were 5xx.

The operations are collected from the app's document at import time (schemathesis's lazy,
fixture-based loader does not work with this pytest); a test checks that the server serves
exactly that document.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from search import Settings
from search.http import create_app

from .conftest import DATA, ServerThread

EXAMPLES = 12  # per operation and generation mode: about 1,000 requests in all, well under a minute
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, model_cache: Path) -> Iterator[str]:
    """A server over a copy of the sample index, with an index root and an ingest root, for the fuzzer to hit."""
    tmp = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(sample_index, tmp / "default")
    shutil.copytree(DATA / "sample", tmp / "allowed")
    (tmp / "indexes").mkdir()
    settings = Settings(
        index_dir=tmp / "default", cache_dir=model_cache, index_root=tmp / "indexes", ingest_roots=(tmp / "allowed",)
    )
    with ServerThread(create_app(settings)) as running:
        yield running.url
    fives = sum(n for status, n in STATUSES.items() if status >= 500)
    print(f"\nfuzz: {sum(STATUSES.values())} requests, {fives} 5xx; by status {dict(sorted(STATUSES.items()))}")


DOCUMENT = create_app(Settings(index_dir=Path("unused"))).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_server_serves_the_fuzzed_document(fuzzed: str) -> None:
    assert httpx.get(f"{fuzzed}/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written to the work tree
    derandomize=True,  # the same requests on every run: CI cannot flake, a failure reproduces
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, fuzzed: str) -> None:
    response = case.call(base_url=fuzzed, timeout=60)
    STATUSES[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)
