"""OpenAI's Responses API (`/v1/responses`) with the `file_search` tool, streamed or not.

The question is searched in the tool's vector stores (`search_stores`) and answered from those passages
by the first store's service: its chat model when one is configured, grounded and verified as /ask's
answers are, else the extractive answerer (the response's `model` says which answered). Responses asked to
be stored (`store`, true by default) are kept in memory, the last `KEPT` of them, for `GET /v1/responses/{id}`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from search.errors import Forbidden

from ...auth import writes
from ...error_shapes import openai_error
from ...registry import IndexRegistry
from ...schemas import errors, returns, text_body
from ..embeddings import OpenAIError
from .output import Run, completed, find
from .request import ResponsesRequest, Unsupported, read_request
from .schema import DeletedResponse, ResponseObject
from .stream import ResponseStream, server_sent

KEPT = 1000
_STREAMED = (
    "The response; with `stream: true`, OpenAI's server-sent events instead (`event:` and `data:` lines, "
    "response.created ... response.completed, or response.failed)"
)


class KeptResponses:
    """The last `limit` stored responses, in memory (gone at restart), with the stores each one searched."""

    def __init__(self, limit: int = KEPT) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, tuple[tuple[str, ...], dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, stores: tuple[str, ...], response: dict[str, Any]) -> None:
        with self._lock:
            self._kept[response["id"]] = (stores, response)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)

    def get(self, response_id: str) -> tuple[tuple[str, ...], dict[str, Any]] | None:
        with self._lock:
            return self._kept.get(response_id)

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._kept.pop(response_id, None) is not None


def responses_router() -> APIRouter:
    """`POST /v1/responses`, and `GET`/`DELETE /v1/responses/{id}` for the responses kept."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
    kept = KeptResponses()

    @router.post(
        "/responses",
        summary="Answer a question from vector stores with the file_search tool (OpenAI's Responses API)",
        responses={**errors(400, 404, 502, 503, model=OpenAIError), **text_body("text/event-stream", _STREAMED)},
        **returns(ResponseObject),
    )
    def create(request: Request, body: ResponsesRequest) -> Any:
        registry: IndexRegistry = request.app.state.registry
        try:
            asked = read_request(body)
            _check_stores(request, registry, asked.store_ids)
            run = Run.start(body, asked, registry.service(asked.store_ids[0]))
        except Unsupported as exc:
            return openai_error(exc.status, str(exc), param=exc.param, code=exc.code)

        def keep(response: dict[str, Any]) -> None:
            if body.store:
                kept.keep(asked.store_ids, response)

        if body.stream:
            events = ResponseStream(run, registry, keep)
            return StreamingResponse(server_sent(iter(events)), media_type="text/event-stream")
        hits = find(run, registry)
        response = completed(run, hits, run.service.answer(asked.question, [h.hit for h in hits]))
        keep(response)
        return response

    @router.get(
        "/responses/{response_id}",
        summary="A stored response (kept in memory until restart)",
        responses=errors(404, model=OpenAIError),
        **returns(ResponseObject),
    )
    def retrieve(request: Request, response_id: str) -> Any:
        found = kept.get(response_id)
        if found is None or not all(request.state.principal.may_use(s) for s in found[0]):
            return _no_response(response_id)
        return found[1]

    @router.delete(
        "/responses/{response_id}",
        summary="Forget a stored response",
        dependencies=[Depends(writes)],
        responses=errors(404, model=OpenAIError),
        **returns(DeletedResponse),
    )
    def delete(request: Request, response_id: str) -> Any:
        found = kept.get(response_id)
        if found is None or not all(request.state.principal.may_use(s) for s in found[0]):
            return _no_response(response_id)
        kept.delete(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    return router


def _check_stores(request: Request, registry: IndexRegistry, store_ids: tuple[str, ...]) -> None:
    """Every store exists and the caller's key reaches it (403 otherwise, before anything runs)."""
    known = registry.folders()
    for store in store_ids:
        if not request.state.principal.may_use(store):
            raise Forbidden(f"this API key has no access to the vector store {store!r}")
        if store not in known:
            raise Unsupported(
                f"No vector store found with id '{store}'.",
                param="tools[0].vector_store_ids",
                status=404,
                code="not_found",
            )


def _no_response(response_id: str) -> JSONResponse:
    return openai_error(
        404,
        f"No response found with id '{response_id}' (responses are kept in memory, the last {KEPT}).",
        code="not_found",
    )
