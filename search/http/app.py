"""The HTTP API: `create_app(settings)` builds the FastAPI app over the server's indexes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry

from indexes import store_exists
from indexes.manifest import read_manifest
from ingest import DEFAULT_EMBEDDING_MODEL, Embedder, IngestSummary, WalkOptions
from search.errors import ERROR_FAMILIES
from search.settings import Settings
from search.watch import Watcher

from .auth import ApiKeys, require
from .browse import browse_router
from .docs import add_docs
from .error_shapes import CatchAll, install_error_handlers
from .jobs import JobManager, JobNotFound, PathNotAllowed
from .limits import Limits, MaxBody, RateLimit
from .mcp import McpEndpoint
from .merger import BackgroundMerger
from .metrics import CONTENT_TYPE, Metrics, MetricsMiddleware
from .origins import CrossSiteGuard, HostGuard
from .registry import DEFAULT, IndexRegistry
from .routes import index_router, named_index, server_router
from .schemas import GUARDED, Health, HealthUnavailable, errors, text_body
from .ui import add_ui
from .v1.embeddings import LocalModelHolder, OpenAIError, openai_router
from .v1.file_store import FileStore
from .v1.files import files_router
from .v1.responses.routes import responses_router
from .v1.vector_stores.routes import vector_stores_router


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app serving the default index of `settings` and every other index it names."""
    registry = IndexRegistry(settings)

    keys = ApiKeys.configure(settings.api_keys, settings.api_keys_file)  # a bad key file fails at start
    limit = RateLimit(settings.rate_limit)
    metrics = Metrics(CollectorRegistry())  # one registry per app: two apps in one process count apart
    metrics.add_collector(lambda m: _index_gauges(m, registry))
    mcp = McpEndpoint(registry, require(keys, limit=limit))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.jobs = JobManager(registry, on_summary=lambda index, s: _count_ingest(metrics, index, s))
        watchers = [_watcher(registry, settings).start()] if settings.watch_paths else []
        app.state.merger = BackgroundMerger(registry, settings.merge_interval).start()
        if registry.pool is not None and store_exists(settings.index_dir) and _is_local(settings.index_dir):
            registry.pool.warm(settings.index_dir)
        async with mcp.lifespan():
            yield
        app.state.merger.stop()
        for watcher in watchers:
            watcher.stop()
        app.state.jobs.close()
        registry.close()

    app = FastAPI(
        title="semsearch",
        version="0.1.0",
        lifespan=lifespan,
        description="Semantic search and question answering over a folder of documents.",
        docs_url=None,  # served below, behind the API keys unless --public-docs
        redoc_url=None,
        openapi_url=None,
    )
    app.state.registry, app.state.metrics = registry, metrics
    app.state.limits = Limits(settings.max_upload_bytes, settings.max_files)
    app.state.files = FileStore(settings.openai_dir / "files")
    install_error_handlers(app, [(JobNotFound, 404, "not_found"), (PathNotAllowed, 403, "forbidden")])
    app.add_middleware(MaxBody, max_bytes=settings.max_upload_bytes)
    app.add_middleware(CrossSiteGuard, allowed=settings.allowed_origins)  # before any body is read
    app.add_middleware(HostGuard, allowed=settings.allowed_hosts)
    app.add_middleware(CatchAll)  # outside MaxBody (its 413 is no accident), inside the metrics (a 500 counts)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: it sees the 413s too
    _include_routers(app, keys, limit, LocalModelHolder(lambda: _local_model(registry, settings)))
    app.router.routes.append(mcp.route())  # the MCP tools over streamable HTTP, behind the same keys
    _add_metrics_and_health(app, Depends(require(keys, limit=limit, every_index=True)), metrics, registry)
    add_docs(app, [] if settings.public_docs or not keys else [Depends(require(keys, limit=limit))])
    add_ui(app)  # the web page, without a key: it holds no data
    return app


_NOT_UNDER_V1 = {"model": OpenAIError, "description": "Never sent under /v1: an invalid request is a 400 there"}


def _include_routers(app: FastAPI, keys: ApiKeys, limit: RateLimit, local_model: LocalModelHolder) -> None:
    """The per-index routes (at the root for the default index, under /indexes/{name}), the server's, /v1's."""
    guard = Depends(require(keys, limit=limit))
    index_errors = errors(*GUARDED, 404, 409, 502, 503)
    openai_errors = {**errors(400, *GUARDED, model=OpenAIError), 422: _NOT_UNDER_V1}  # /v1 answers 400 instead
    for router in (openai_router(local_model), files_router(), vector_stores_router(), responses_router()):
        app.include_router(router, dependencies=[guard], responses=openai_errors)
    default_guard = Depends(require(keys, limit=limit, default_index=DEFAULT))
    for per_index in (index_router, browse_router):
        app.include_router(per_index(), tags=["default index"], dependencies=[default_guard], responses=index_errors)
        app.include_router(
            per_index(),
            prefix="/indexes/{name}",
            tags=["named indexes"],
            dependencies=[guard, Depends(named_index)],
            responses=index_errors,
        )
    server_errors = errors(*GUARDED, 404, 409, 502, 503)  # creating an index may ask the embedding server
    app.include_router(server_router(), tags=["server"], dependencies=[guard], responses=server_errors)


def _add_metrics_and_health(app: FastAPI, guard: Any, metrics: Metrics, registry: IndexRegistry) -> None:
    """`/metrics` (about every index, so a key scoped to some may not read it) and the public `/healthz`."""

    @app.get(
        "/metrics",
        summary="Prometheus metrics: requests, latencies, ingest counters, index sizes (a key without index scope)",
        dependencies=[guard],
        response_class=Response,
        responses={**errors(*GUARDED), **text_body(CONTENT_TYPE, "The Prometheus text exposition format")},
    )
    def metrics_route() -> Response:
        return metrics.response()

    @app.get(
        "/healthz",
        summary="Liveness and whether the default index opens",
        response_model=Health,
        responses={503: {"model": HealthUnavailable, "description": "The default index does not open"}, **errors(500)},
    )
    def healthz() -> JSONResponse:
        try:
            counts = registry.service(DEFAULT).index.stats().counts
        except ERROR_FAMILIES as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "documents": counts.documents, "chunks": counts.chunks})


def _watcher(registry: IndexRegistry, settings: Settings) -> Watcher:
    """Keeps the default index in sync with the folders given to `serve --watch`."""
    return Watcher(registry.service(DEFAULT), settings.watch_paths, WalkOptions(), lock=registry.write_lock(DEFAULT))


def _index_gauges(metrics: Metrics, registry: IndexRegistry) -> None:
    """Refresh the index gauges from each opened index's stats (at scrape time)."""
    for name in registry.opened():
        stats = registry.service(name).index.stats()
        metrics.index_documents.labels(index=name).set(stats.counts.documents)
        metrics.index_chunks.labels(index=name).set(stats.counts.chunks)
        metrics.index_size_bytes.labels(index=name).set(stats.size_bytes)


def _count_ingest(metrics: Metrics, index: str, summary: IngestSummary) -> None:
    metrics.count_ingest(index, summary.ingested, summary.embedded)


def _local_model(registry: IndexRegistry, settings: Settings) -> Embedder:
    """The local model, the same copy the indexes built with it use."""
    return registry.embedder(DEFAULT_EMBEDDING_MODEL)


def _is_local(folder: Path) -> bool:
    """Whether the index at `folder` is in the local store (search worker processes can open only those)."""
    return read_manifest(folder).store == "local"
