"""Prometheus metrics and access logs: `MetricsMiddleware` records every request, `Metrics.render()` is `/metrics`.

The text format (version 0.0.4) is small enough to write by hand, which spares a dependency and
keeps each app's metrics its own (prometheus_client keeps one registry per process).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import fastapi.routing
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds; Prometheus's defaults
UNMATCHED = "unmatched"  # the route label of requests no route matched: raw paths would explode the label set

access_log = logging.getLogger("semsearch.access")


class _Family:
    """One metric name: its help, its label names and a value per set of label values."""

    kind = "untyped"

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels = name, help, labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def get(self, **labels: str) -> float:
        """The current value for these labels (0 if never set)."""
        return self._values.get(self._key(labels), 0.0)

    def _key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes the labels ({', '.join(self.labels)}), not ({', '.join(labels)})")
        return tuple(str(labels[name]) for name in self.labels)

    def _add(self, key: tuple[str, ...], amount: float) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            values = sorted(self._values.items())
        for key, value in values:
            yield f"{self.name}{_labels(zip(self.labels, key))} {_number(value)}"


class Counter(_Family):
    """A count that only goes up."""

    kind = "counter"

    def inc(self, amount: float = 1, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name} is a counter: it only goes up")
        self._add(self._key(labels), amount)


class Gauge(_Family):
    """A value that is set, and may go down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1, **labels: str) -> None:
        self._add(self._key(labels), amount)


class Histogram(_Family):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = BUCKETS) -> None:
        super().__init__(name, help, labels)
        self.buckets = buckets
        self._series: dict[tuple[str, ...], list[float]] = {}  # one count per bucket, then +Inf, then the sum

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                series[i] += value <= bound
            series[-2] += 1
            series[-1] += value

    def get(self, **labels: str) -> float:
        """How many observations these labels have."""
        return self._series.get(self._key(labels), [0.0, 0.0])[-2]

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            series = sorted((key, list(values)) for key, values in self._series.items())
        for key, values in series:
            pairs = list(zip(self.labels, key))
            for bound, count in zip([*map(_number, self.buckets), "+Inf"], values):
                yield f"{self.name}_bucket{_labels([*pairs, ('le', bound)])} {_number(count)}"
            yield f"{self.name}_sum{_labels(pairs)} {_number(values[-1])}"
            yield f"{self.name}_count{_labels(pairs)} {_number(values[-2])}"


class Metrics:
    """Every metric the service exposes; one instance per app (`app.state.metrics`)."""

    def __init__(self) -> None:
        self.requests = Counter("semsearch_http_requests_total", "HTTP requests by method, route template and status.", ("method", "route", "status"))
        self.latency = Histogram("semsearch_http_request_duration_seconds", "HTTP request latency by route template.", ("route",))
        self.ingest_documents = Counter("semsearch_ingest_documents_total", "Documents ingested (new or changed).", ("index",))
        self.ingest_chunks = Counter("semsearch_ingest_chunks_total", "Chunks embedded and stored.", ("index",))
        self.index_documents = Gauge("semsearch_index_documents", "Documents in the index.", ("index",))
        self.index_chunks = Gauge("semsearch_index_chunks", "Chunks in the index.", ("index",))
        self.index_size_bytes = Gauge("semsearch_index_size_bytes", "Size of the index folder on disk.", ("index",))
        self._collectors: list[Callable[[Metrics], None]] = []

    def add_collector(self, collect: Callable[[Metrics], None]) -> None:
        """Run `collect(metrics)` before each render, e.g. to refresh the index gauges from their stats."""
        self._collectors.append(collect)

    def families(self) -> tuple[_Family, ...]:
        return tuple(value for value in vars(self).values() if isinstance(value, _Family))

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        for collect in self._collectors:
            collect(self)
        return "".join(f"{line}\n" for family in self.families() for line in family.render())

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
        self.metrics.requests.inc(method=scope["method"], route=route, status=str(status))
        self.metrics.latency.observe(seconds, route=route)
        principal = getattr(scope.get("state", {}).get("principal"), "id", None)
        client = scope.get("client")
        access_log.info(json.dumps({
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"), "method": scope["method"], "route": route,
            "status": status, "duration_ms": round(seconds * 1000, 2), "principal": principal, "client": client[0] if client else None,
        }))


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


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    body = ",".join(f'{name}="{_escape_label(value)}"' for name, value in pairs)
    return f"{{{body}}}" if body else ""


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value) or math.isnan(value):
        return "NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
