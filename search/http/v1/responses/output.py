"""OpenAI's `response` object and its output items, for one file_search answer (streamed or not)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from indexes import StoredChunk
from search.answers.extractive import Answer
from search.service import SearchService

from ...registry import IndexRegistry
from ..vector_stores.search import StoreHit, search_stores
from .request import EXTRACTIVE_MODEL, FileSearchRequest, ResponsesRequest, Unsupported
from .text import FileOf, citations_at, strip_markers


@dataclass(frozen=True)
class Run:
    """One response in the making: its ids, what was asked, and what answers it."""

    id: str
    search_id: str
    message_id: str
    created_at: int
    body: ResponsesRequest
    request: FileSearchRequest
    service: SearchService  # the first store's: its answerer and answering settings answer for every store
    model: str

    @classmethod
    def start(cls, body: ResponsesRequest, request: FileSearchRequest, service: SearchService) -> Run:
        model = answering_model(body.model, service)
        return cls(new_id("resp_"), new_id("fs_"), new_id("msg_"), int(time.time()), body, request, service, model)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(24)


def answering_model(requested: str, service: SearchService) -> str:
    """The model that answers: the server's chat model (named as such), else the extractive answerer (any name)."""
    if service.answerer is None:
        return EXTRACTIVE_MODEL
    name = service.answerer.options.model
    if requested not in (name, f"openai/{name}"):
        raise Unsupported(
            f"The model `{requested}` is not served here: this server answers with `{name}`, its chat model.",
            param="model",
            code="model_not_found",
        )
    return name


def find(run: Run, registry: IndexRegistry) -> list[StoreHit]:
    """The passages the request's file_search finds."""
    asked = run.request
    return search_stores(
        registry,
        asked.store_ids,
        [asked.question],
        max_num_results=asked.max_num_results,
        filters=asked.filters,
        score_threshold=asked.score_threshold,
        ranker=asked.ranker,
    )


def search_call(run: Run, status: str, hits: Sequence[StoreHit] | None) -> dict[str, Any]:
    """The `file_search_call` item (its results only when `include` asks for them)."""
    done = hits is not None
    results = [_result(h) for h in hits] if hits is not None and run.request.include_results else None
    return {
        "id": run.search_id,
        "type": "file_search_call",
        "status": status,
        "queries": [run.request.question] if done else [],
        "results": results,
    }


def _result(hit: StoreHit) -> dict[str, Any]:
    return {
        "file_id": hit.file_id,
        "filename": hit.filename,
        "score": round(hit.hit.score, 6),
        "text": hit.hit.text,
        "attributes": hit.attributes,
    }


def message(run: Run, status: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": run.message_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def text_part(text: str, cited: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": cited, "logprobs": []}


def file_of(hits: Sequence[StoreHit]) -> FileOf:
    """A cited passage's file, looked up among the hits it came from."""

    def find(stored: StoredChunk) -> tuple[str, str] | None:
        found = next((h for h in hits if h.hit.stored is stored), None) or next(
            (h for h in hits if h.hit.stored == stored), None
        )
        return (found.file_id, found.filename) if found is not None else None

    return find


def usage(answer: Answer) -> dict[str, Any]:
    """The chat model's tokens (none for extractive answers)."""
    prompt, completion = int(answer.usage.get("prompt_tokens") or 0), int(answer.usage.get("completion_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def response(
    run: Run,
    status: str,
    output: list[dict[str, Any]],
    *,
    spent: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `response` object; temperature and max_output_tokens say what the answerer used."""
    body, answerer = run.body, run.service.answerer
    return {
        "id": run.id,
        "object": "response",
        "created_at": run.created_at,
        "completed_at": int(time.time()) if status == "completed" else None,
        "status": status,
        "model": run.model,
        "output": output,
        "usage": spent,
        "error": error,
        "incomplete_details": None,
        "instructions": body.instructions,
        "metadata": body.metadata or {},
        "tools": [run.request.tool],
        "tool_choice": body.tool_choice or "auto",
        "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
        "temperature": answerer.options.temperature if answerer is not None else None,
        "top_p": body.top_p,
        "max_output_tokens": answerer.options.max_tokens if answerer is not None else None,
        "previous_response_id": None,
        "store": body.store,
        "text": {"format": {"type": "text"}},
        "truncation": body.truncation or "disabled",
        "user": body.user,
        "background": False,
    }


def completed(run: Run, hits: Sequence[StoreHit], answer: Answer) -> dict[str, Any]:
    """The whole response to a request that was not streamed."""
    text, marks = strip_markers(answer.answer, len(hits))
    part = text_part(text, citations_at(marks, answer, file_of(hits)))
    output = [search_call(run, "completed", hits), message(run, "completed", [part])]
    return response(run, "completed", output, spent=usage(answer))
