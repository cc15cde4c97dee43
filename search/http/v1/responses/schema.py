"""The response of `POST /v1/responses`, as OpenAI's SDK types it (`openai/types/responses/response.py`).

Only what this server sends: a `file_search_call` item, then a `message` whose text carries `file_citation`s.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ...schemas import ResponseBody


class FileSearchResult(ResponseBody):
    file_id: str
    filename: str
    score: float = Field(description="relevance in [0, 1]")
    text: str
    attributes: dict[str, Any]


class FileSearchCall(ResponseBody):
    id: str
    type: Literal["file_search_call"]
    status: Literal["in_progress", "searching", "completed", "failed"]
    queries: list[str]
    results: list[FileSearchResult] | None = Field(description='null unless `include` has "file_search_call.results"')


class FileCitation(ResponseBody):
    type: Literal["file_citation"]
    file_id: str
    filename: str
    index: int = Field(description="the character offset in `text` where the citation stands")


class OutputText(ResponseBody):
    type: Literal["output_text"]
    text: str
    annotations: list[FileCitation]
    logprobs: list[Any]


class OutputMessage(ResponseBody):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]


class InputTokensDetails(ResponseBody):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(ResponseBody):
    reasoning_tokens: int


class Usage(ResponseBody):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseErrorInfo(ResponseBody):
    code: str
    message: str


class TextFormat(ResponseBody):
    type: Literal["text"]


class TextConfig(ResponseBody):
    format: TextFormat


class ResponseObject(ResponseBody):
    """OpenAI's `response` object."""

    id: str
    object: Literal["response"]
    created_at: int
    completed_at: int | None
    status: Literal["in_progress", "completed", "failed"]
    model: str = Field(description="what answered: the chat model's name, or semsearch-extractive")
    output: list[FileSearchCall | OutputMessage]
    usage: Usage | None
    error: ResponseErrorInfo | None
    incomplete_details: None
    instructions: str | None = Field(description="echoed; the grounded answering prompt is fixed")
    metadata: dict[str, str]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    parallel_tool_calls: bool
    temperature: float | None
    top_p: float | None
    max_output_tokens: int | None
    previous_response_id: None
    store: bool
    text: TextConfig
    truncation: Literal["auto", "disabled"]
    user: str | None
    background: bool


class DeletedResponse(ResponseBody):
    id: str
    object: Literal["response"]
    deleted: bool
