"""The HTTP API: `create_app(settings)` builds a FastAPI app over one index."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from indexes import DimensionMismatch, IndexNotFound, IndexStoreError
from ingest import DEFAULT_EMBEDDING_MODEL, Embedder, IngestError, UpstreamError, UpstreamUnavailable, make_embedder

from .errors import AnswerRefused, ConfigError, InvalidQuery, SearchError
from .openai_routes import LocalModelHolder, openai_router
from .retrieve import MAX_K, MAX_QUERY_CHARS
from .service import SearchService
from .settings import Settings

Mode = Field(default="hybrid", pattern="^(hybrid|dense|lexical)$", description="hybrid, dense or lexical")


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, examples=["how does TCP avoid congestion?"])
    k: int = Field(default=10, ge=1, le=MAX_K)
    mode: str = Mode
    fusion: str = Field(default="zscore", pattern="^(zscore|rrf)$", description="how hybrid mode combines the two sides")
    explain: bool = False


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, examples=["who invented the printing press?"])
    k: int = Field(default=8, ge=1, le=MAX_K, description="passages to retrieve")
    mode: str = Mode
    stream: bool = Field(default=False, description="server-sent events: answer deltas, then the citations and usage")


class _ServiceHolder:
    """Opens the index on first use, so the server may start before the first ingest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service: SearchService | None = None
        self._lock = threading.Lock()

    def get(self) -> SearchService:
        with self._lock:
            if self.service is None:
                self.service = SearchService.from_settings(self.settings)
            return self.service

    def close(self) -> None:
        if self.service is not None:
            self.service.close()


def create_app(settings: Settings) -> FastAPI:
    """A FastAPI app serving the index named by `settings`."""
    holder = _ServiceHolder(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        holder.close()

    app = FastAPI(title="semsearch", version="0.1.0", lifespan=lifespan,
                  description="Semantic search and question answering over a folder of documents.")
    app.state.holder = holder
    _install_error_handlers(app)

    def local_model() -> Embedder:
        """The index's own local model when it has one (one copy in memory), else a new one."""
        try:
            embedder = holder.get().embedder
            if embedder.name == DEFAULT_EMBEDDING_MODEL:
                return embedder
        except (IndexStoreError, IngestError):
            pass
        return make_embedder(DEFAULT_EMBEDDING_MODEL, cache_dir=settings.cache_dir)

    app.include_router(openai_router(LocalModelHolder(local_model)))

    def service() -> SearchService:
        return holder.get()

    @app.post("/search", summary="The passages that best match a query")
    def search(body: SearchRequest, svc: SearchService = Depends(service)) -> dict[str, Any]:
        hits = svc.search(body.query, body.k, body.mode, body.fusion)
        return {"query": body.query, "mode": body.mode, "results": [h.as_dict(explain=body.explain) for h in hits]}

    @app.post("/ask", summary="An answer drawn from the best passages, with citations")
    def ask(body: AskRequest, svc: SearchService = Depends(service)) -> Any:
        if not body.stream:
            return svc.ask(body.question, body.k, body.mode).as_dict()
        events = svc.ask_stream(body.question, body.k, body.mode)
        first = next(events)  # errors before the first byte still get their own status code
        return StreamingResponse(_sse(itertools.chain([first], events)), media_type="text/event-stream")

    @app.get("/healthz", summary="Liveness and whether the index opens")
    def healthz() -> JSONResponse:
        try:
            counts = holder.get().index.stats()
        except (IndexStoreError, IngestError) as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "documents": counts["documents"], "chunks": counts["chunks"]})

    @app.get("/stats", summary="Documents, chunks, model, index type, size on disk")
    def stats(svc: SearchService = Depends(service)) -> dict[str, Any]:
        return svc.stats()

    return app


def _sse(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    """Server-sent events: `data: {json}` per event, then `data: [DONE]`; a late error is an event too."""
    try:
        for event in events:
            if event["type"] == "answer":
                event = {"type": "answer", **event["answer"].as_dict()}
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
    except (SearchError, IngestError, IndexStoreError) as exc:
        yield f"data: {json.dumps({'type': 'error', 'error': {'type': type(exc).__name__, 'message': str(exc)}})}\n\n"
    yield "data: [DONE]\n\n"


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    """One handler per error family; subclasses are found along the class hierarchy."""

    async def invalid_query(request: Request, exc: Exception) -> JSONResponse:
        return _error(422, "invalid_query", str(exc))

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()]
        return _error(422, "invalid_request", "; ".join(problems), details=[{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()])

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error(404, "index_not_found", str(exc))

    async def mismatch(request: Request, exc: Exception) -> JSONResponse:
        return _error(409, "model_mismatch", str(exc))

    async def upstream(request: Request, exc: Exception) -> JSONResponse:
        return _error(502, "upstream_error", str(exc))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return _error(503, "upstream_unavailable", str(exc))

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        return _error(400, "question_refused", str(exc))

    async def config(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "configuration_error", str(exc))

    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal_error", str(exc))

    app.add_exception_handler(InvalidQuery, invalid_query)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(IndexNotFound, not_found)
    app.add_exception_handler(DimensionMismatch, mismatch)
    app.add_exception_handler(UpstreamError, upstream)
    app.add_exception_handler(UpstreamUnavailable, unavailable)
    app.add_exception_handler(AnswerRefused, refused)
    app.add_exception_handler(ConfigError, config)
    for family in (SearchError, IndexStoreError, IngestError):
        app.add_exception_handler(family, server_error)
