"""Prometheus metrics and access logs, recorded by the middleware on a real server."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import Response
from prometheus_client.utils import floatToGoString

from search.errors import RequestRejected
from search.http.auth import ApiKeys, Principal, require
from search.http.error_shapes import handle_rejected
from search.http.limits import MaxBody
from search.http.metrics import BUCKETS, CONTENT_TYPE, UNMATCHED, Metrics, MetricsMiddleware

from .conftest import ServerThread

KEY = "metrics-key-0123456789abcdef"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample line of the exposition, checked against the format: `name{labels} value`."""
    samples = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$", line), line
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = frozenset(LABEL.findall(match.group(2) or ""))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples


def value(text: str, name: str, **labels: str) -> float:
    return parse(text).get((name, frozenset(labels.items())), 0.0)


def build_app(metrics: Metrics) -> FastAPI:
    keys = ApiKeys.parse(KEY)
    app = FastAPI()
    app.add_exception_handler(RequestRejected, handle_rejected)
    app.add_middleware(MaxBody, max_bytes=100)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last: outermost, so it sees every answer
    router = APIRouter()

    @router.post("/search")
    def search(principal: Principal = Depends(require(keys, default_index="default"))) -> dict[str, str]:
        return {"principal": principal.id}

    app.include_router(router)
    app.include_router(router, prefix="/indexes/{name}")

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("an unexpected failure")

    @app.get("/metrics")
    def metrics_route() -> Response:
        return metrics.response()

    return app


@pytest.fixture(scope="module")
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture(scope="module")
def server(metrics: Metrics) -> Iterator[ServerThread]:
    with ServerThread(build_app(metrics)) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def test_exposition_parses_and_has_the_content_type(client: httpx.Client) -> None:
    client.get("/items/1")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    samples = parse(response.text)
    assert samples
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", response.text, re.M))
    assert types["semsearch_http_requests_total"] == "counter"
    assert types["semsearch_http_request_duration_seconds"] == "histogram"
    assert types["semsearch_index_size_bytes"] == "gauge"


def test_counts_by_route_template_and_status(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    for n in (1, 2, 3):
        assert client.get(f"/items/{n}").status_code == 200
    client.get("/items/not-a-number")  # 422, same route
    client.get("/nowhere/at/all")
    client.post("/indexes/docs/search", headers={"Authorization": f"Bearer {KEY}"})
    client.post("/indexes/wiki/search")  # 401
    client.post("/search", headers={"Authorization": f"Bearer {KEY}"})
    after = client.get("/metrics").text

    def delta(**labels: str) -> float:
        name = "semsearch_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(method="GET", route="/items/{item_id}", status="200") == 3
    assert delta(method="GET", route="/items/{item_id}", status="422") == 1
    assert delta(method="GET", route=UNMATCHED, status="404") == 1
    assert delta(method="POST", route="/indexes/{name}/search", status="200") == 1
    assert delta(method="POST", route="/indexes/{name}/search", status="401") == 1
    assert delta(method="POST", route="/search", status="200") == 1
    assert not any("/items/1" in dict(labels).get("route", "") for _, labels in parse(after))  # templates, not URLs


def test_latency_histogram_buckets_grow(client: httpx.Client) -> None:
    name = "semsearch_http_request_duration_seconds"
    before = client.get("/metrics").text
    for _ in range(4):
        client.get("/items/7")
    after = client.get("/metrics").text
    route = "/items/{item_id}"
    assert value(after, f"{name}_count", route=route) - value(before, f"{name}_count", route=route) == 4
    assert value(after, f"{name}_sum", route=route) > value(before, f"{name}_sum", route=route)
    counts = [value(after, f"{name}_bucket", route=route, le=bound) for bound in [*map(_bound, BUCKETS), "+Inf"]]
    assert counts == sorted(counts)  # cumulative
    assert counts[-1] == value(after, f"{name}_count", route=route)
    in_ten_seconds = {"route": route, "le": "10.0"}
    assert value(after, f"{name}_bucket", **in_ten_seconds) - value(before, f"{name}_bucket", **in_ten_seconds) == 4


def test_failures_and_rejections_before_routing_are_counted(
    client: httpx.Client, server: ServerThread, metrics: Metrics
) -> None:
    with httpx.Client(base_url=server.url) as once:  # uvicorn drops the connection after an unhandled error
        assert once.get("/boom").status_code == 500
    assert requests(metrics, method="GET", route="/boom", status="500") == 1
    assert client.post("/search", content=b"x" * 500).status_code == 413  # MaxBody answers before any route runs
    assert requests(metrics, method="POST", route="/search", status="413") >= 1


def test_one_json_access_log_line_per_request(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="semsearch.access")
    client.post("/indexes/docs/search?secret=1", headers={"Authorization": f"Bearer {KEY}"})
    client.get("/items/5")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "semsearch.access"]
    assert len(lines) == 2
    first, second = lines
    assert set(first) == {"time", "method", "route", "status", "duration_ms", "principal", "client"}
    assert first["route"] == "/indexes/{name}/search" and first["status"] == 200 and first["method"] == "POST"
    assert first["principal"] == ApiKeys.parse(KEY).check(f"Bearer {KEY}", write=False, index=None).id
    assert first["client"] == "127.0.0.1" and first["duration_ms"] >= 0
    assert second["principal"] is None and second["route"] == "/items/{item_id}"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert KEY not in text and "secret" not in text and "Bearer" not in text


def test_families_set_by_other_code() -> None:
    metrics = Metrics()
    metrics.count_ingest("docs", 3, 40)
    metrics.add_collector(lambda m: m.index_size_bytes.labels(index="docs").set(12345))
    metrics.index_documents.labels(index='we"ird\\name').set(7)
    text = metrics.render()
    assert value(text, "semsearch_ingest_documents_total", index="docs") == 3
    assert value(text, "semsearch_ingest_chunks_total", index="docs") == 40
    assert value(text, "semsearch_index_size_bytes", index="docs") == 12345
    assert 'semsearch_index_documents{index="we\\"ird\\\\name"} 7.0' in text.splitlines()
    assert "_created" not in text
    with pytest.raises(ValueError, match="missing label values"):
        metrics.index_chunks.set(1)
    with pytest.raises(ValueError, match="non-negative"):
        metrics.ingest_chunks.labels(index="docs").inc(-1)


def test_each_app_counts_in_its_own_registry_with_process_metrics() -> None:
    one, two = Metrics(), Metrics()
    one.count_ingest("docs", 2, 5)
    assert value(one.render(), "semsearch_ingest_documents_total", index="docs") == 2
    assert value(two.render(), "semsearch_ingest_documents_total", index="docs") == 0
    samples = {name for name, _ in parse(two.render())}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"} <= samples


def requests(metrics: Metrics, **labels: str) -> float:
    return metrics.registry.get_sample_value("semsearch_http_requests_total", labels) or 0.0


def _bound(bucket: float) -> str:
    return str(floatToGoString(bucket))  # the `le` label as prometheus_client writes it: 10.0, 0.005
