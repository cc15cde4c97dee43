"""Prometheus metrics and access logs: `MetricsMiddleware` records every request, `Metrics.render()` is `/metrics`.

The exposition is prometheus_client's. Each app gets its own `CollectorRegistry` (two apps in one
process count apart) holding the service's metrics and the process, platform and GC collectors.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fastapi.routing
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format `generate_latest` writes
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
UNMATCHED = "unmatched"  # the route label of requests no route matched: raw paths would explode the label set

access_log = logging.getLogger("semsearch.access")


class Metrics:
    """Every metric the service exposes, in one registry; one instance per app (`app.state.metrics`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # No `<name>_created` series: nothing reads them and they double the lines (the switch is process-wide).
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = on = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "semsearch_http_requests_total",
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=on,
        )
        self.latency = Histogram(
            "semsearch_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ("route",),
            buckets=BUCKETS,
            registry=on,
        )
        self.ingest_documents = Counter(
            "semsearch_ingest_documents_total", "Documents ingested (new or changed).", ("index",), registry=on
        )
        self.ingest_chunks = Counter(
            "semsearch_ingest_chunks_total", "Chunks embedded and stored.", ("index",), registry=on
        )
        self.index_documents = Gauge("semsearch_index_documents", "Documents in the index.", ("index",), registry=on)
        self.index_chunks = Gauge("semsearch_index_chunks", "Chunks in the index.", ("index",), registry=on)
        self.index_size_bytes = Gauge(
            "semsearch_index_size_bytes", "Size of the index folder on disk.", ("index",), registry=on
        )
        prometheus_client.ProcessCollector(registry=on)  # CPU, memory, open files, start time
        prometheus_client.PlatformCollector(registry=on)  # python_info
        prometheus_client.GCCollector(registry=on)
        self._collectors: list[Callable[[Metrics], None]] = []

    def add_collector(self, collect: Callable[[Metrics], None]) -> None:
        """Run `collect(metrics)` before each render, e.g. to refresh the index gauges from their stats."""
        self._collectors.append(collect)

    def count_ingest(self, index: str, documents: int, chunks: int) -> None:
        """Count documents ingested (new or changed) into `index` and the chunks embedded for them."""
        self.ingest_documents.labels(index=index).inc(documents)
        self.ingest_chunks.labels(index=index).inc(chunks)

    def render(self) -> str:
        """The Prometheus text exposition of every metric in this app's registry."""
        for collect in self._collectors:
            collect(self)
        return prometheus_client.generate_latest(self.registry).decode()

    def response(self) -> Response:
        """`render()` as the body of a `GET /metrics` response."""
        return Response(self.render(), media_type=CONTENT_TYPE)


class MetricsMiddleware:
    """ASGI middleware: counts and times every HTTP request by route template, and logs one JSON line for it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding
        recorded = False

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self._record(scope, status, time.perf_counter() - start)

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()  # before the last bytes leave: a client holding its answer finds it counted
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            record()

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        self.metrics.requests.labels(method=scope["method"], route=route, status=str(status)).inc()
        self.metrics.latency.labels(route=route).observe(seconds)
        principal = getattr(scope.get("state", {}).get("principal"), "id", None)
        client = scope.get("client")
        access_log.info(
            json.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "principal": principal,
                    "client": client[0] if client else None,
                }
            )
        )


def route_template(scope: Scope) -> str:
    """The path of the app's route matching this request (`/indexes/{name}/search`), else UNMATCHED.

    Matched here rather than read from `scope["route"]`: that is set only once routing ran (not for a
    413 from MaxBody), and newer FastAPI puts there the included route without its router's prefix.
    """
    partial = None
    for route in flat_routes(scope.get("app")):
        try:
            match = route.matches(scope)[0]
        except Exception:  # a path parameter its convertor refuses: not this route
            continue
        if match is Match.FULL:
            return str(route.path)
        partial = partial or (str(route.path) if match is Match.PARTIAL else None)
    return partial or UNMATCHED


def flat_routes(app: object) -> list[Any]:
    """The app's routes with included routers' prefixes applied (FastAPI 0.16x includes routers lazily)."""
    routes = list(getattr(app, "routes", ()))
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(flatten(routes)) if flatten is not None else routes
