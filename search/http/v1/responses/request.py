"""The body of `POST /v1/responses`, and what this server can do with it: one `file_search` over vector stores.

`read_request` turns a body into a `FileSearchRequest` (the question, the stores, the search options) or
raises `Unsupported`, whose status, message and `param` become an error in OpenAI's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, StrictBool, ValidationError

from search.errors import InvalidQuery
from search.filters import parse_filters
from search.settings import MAX_QUERY_CHARS

from ...bodies import RequestBody

EXTRACTIVE_MODEL = "semsearch-extractive"  # what answers when the server has no chat model
INCLUDE_RESULTS = "file_search_call.results"
DEFAULT_MAX_RESULTS = 10
_FEATURES = "this server answers with the file_search tool only, over its vector stores"


class Unsupported(Exception):
    """A request this server refuses: the message says what it supports instead."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


class RankingOptions(RequestBody):
    ranker: Literal["auto", "default-2024-11-15", "none"] | None = Field(
        default=None,
        description="auto and default-2024-11-15: semsearch's ranking (with its reranker, if any); none: no reranker",
    )
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    hybrid_search: dict[str, float] | None = Field(default=None, description="accepted; semsearch's fusion applies")


class FileSearchTool(RequestBody):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(min_length=1, max_length=16)
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None


class ResponsesRequest(RequestBody):
    """OpenAI's request; fields this server cannot honour are refused with a 400 (see `read_request`)."""

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    include: list[str] | None = None
    stream: StrictBool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=1)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    store: StrictBool = True
    parallel_tool_calls: StrictBool | None = None
    previous_response_id: str | None = None
    background: StrictBool = False
    truncation: Literal["auto", "disabled"] | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    # Accepted and without effect here: no token log-probabilities, prompt cache or context compaction.
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    # Refused (read_request): no conversation state, no stored prompts.
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None


@dataclass(frozen=True)
class FileSearchRequest:
    """What one request asks of this server."""

    question: str
    store_ids: tuple[str, ...]
    tool: dict[str, Any]  # the file_search tool as the response echoes it
    max_num_results: int
    filters: dict[str, Any] | None
    score_threshold: float | None
    ranker: str
    include_results: bool


def read_request(body: ResponsesRequest) -> FileSearchRequest:
    """The file search a body asks for, or `Unsupported`."""
    _refuse_features(body)
    tool = _file_search_tool(body.tools or [])
    options = tool.ranking_options or RankingOptions()
    echoed = {
        "type": "file_search",
        "vector_store_ids": list(tool.vector_store_ids),
        "filters": tool.filters,
        "max_num_results": tool.max_num_results or DEFAULT_MAX_RESULTS,
        "ranking_options": {"ranker": options.ranker or "auto", "score_threshold": options.score_threshold or 0.0},
    }
    return FileSearchRequest(
        question=question_of(body.input),
        store_ids=tuple(dict.fromkeys(tool.vector_store_ids)),
        tool=echoed,
        max_num_results=tool.max_num_results or DEFAULT_MAX_RESULTS,
        filters=tool.filters,
        score_threshold=options.score_threshold,
        ranker=options.ranker or "auto",
        include_results=_includes_results(body.include or []),
    )


def _refuse_features(body: ResponsesRequest) -> None:
    refused = {
        "previous_response_id": body.previous_response_id is not None,
        "conversation": body.conversation is not None,
        "prompt": body.prompt is not None,
        "background": body.background,
        "reasoning": bool(body.reasoning),
    }
    for field, present in refused.items():
        if present:
            raise Unsupported(f"`{field}` is not supported: {_FEATURES}, one question at a time.", param=field)
    if body.text and (body.text.get("format") or {}).get("type", "text") != "text":
        raise Unsupported("Only text output is supported (`text.format.type` = `text`).", param="text.format")
    choice = body.tool_choice
    name = choice if isinstance(choice, str) else (choice or {}).get("type")
    if name not in (None, "auto", "required", "file_search"):
        raise Unsupported(f"`tool_choice` {name!r} is not supported: {_FEATURES} (use auto).", param="tool_choice")


def _file_search_tool(tools: list[dict[str, Any]]) -> FileSearchTool:
    """The one file_search tool of the request."""
    if not tools:
        raise Unsupported(f"Give a file_search tool: {_FEATURES}.", param="tools", code="missing_required_parameter")
    for n, given in enumerate(tools):
        if given.get("type") != "file_search":
            raise Unsupported(
                f"Tool type {given.get('type')!r} is not supported: {_FEATURES}.", param=f"tools[{n}].type"
            )
    if len(tools) > 1:
        raise Unsupported("Give exactly one file_search tool (list every vector store in it).", param="tools")
    try:
        tool = FileSearchTool.model_validate(tools[0])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise Unsupported(f"tools[0].{where}: {error['msg']}", param=f"tools[0].{where}") from exc
    try:
        parse_filters(tool.filters)
    except InvalidQuery as exc:
        raise Unsupported(f"tools[0].{exc}", param="tools[0].filters") from exc
    return tool


def _includes_results(include: list[str]) -> bool:
    for n, item in enumerate(include):
        if item != INCLUDE_RESULTS:
            raise Unsupported(
                f"include {item!r} is not supported; this server offers {INCLUDE_RESULTS!r}.", param=f"include[{n}]"
            )
    return bool(include)


def question_of(value: str | list[dict[str, Any]]) -> str:
    """The question: the input string, or the text of the last user message of a list of input items."""
    if isinstance(value, str):
        return _checked(value, "input")
    users = [(n, item) for n, item in enumerate(value) if item.get("role") == "user"]
    for n, item in enumerate(value):
        if item.get("type", "message") != "message" or "role" not in item:
            raise Unsupported(f"input[{n}]: only messages ({{role, content}}) are supported here.", param=f"input[{n}]")
    if not users:
        raise Unsupported("The input has no user message to answer.", param="input")
    n, last = users[-1]
    return _checked(_text_of(last.get("content"), f"input[{n}].content"), f"input[{n}].content")


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Unsupported(f"{where}: give a string or a list of input_text parts.", param=where)
    texts = []
    for n, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "input_text" or not isinstance(part.get("text"), str):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise Unsupported(
                f"{where}[{n}]: only input_text parts are supported, not {kind!r}.", param=f"{where}[{n}]"
            )
        texts.append(part["text"])
    return "\n".join(texts)


def _checked(text: str, where: str) -> str:
    text = text.strip()
    if not text:
        raise Unsupported(f"{where}: the question is empty.", param=where)
    if len(text) > MAX_QUERY_CHARS:
        raise Unsupported(f"{where}: the question is over {MAX_QUERY_CHARS} characters.", param=where)
    return text
