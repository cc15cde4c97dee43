"""Response bodies of the HTTP API, as Pydantic models, so `/openapi.json` says what each route returns.

Routes still build plain dicts; FastAPI validates them against these models and serialises them with
`response_model_exclude_unset`, so a key the code leaves out stays out (never `null`), and every key the
code writes must be declared here (`extra="forbid"`): a route cannot drift from its documentation.
The OpenAI-wire bodies live beside their routes, in `openai.py`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from indexes.facets import FACET_LIMIT


class ResponseBody(BaseModel):
    """A JSON object with exactly these keys (a base for every response model)."""

    model_config = ConfigDict(extra="forbid")


# Search and answers


class SearchHit(ResponseBody):
    """One passage: where it is (document, page, character span), its text and its score."""

    chunk_id: int
    document_id: int
    path: str
    title: str
    page: int | None
    text: str
    score: float = Field(
        ge=0, le=1, description="relevance from 0 to 1, comparable across queries; the raw fused value is in `explain`"
    )
    heading: str
    char_start: int | None
    char_end: int | None
    snippet: str = Field(description="the passage's best fragment, query words in <mark> tags")
    explain: dict[str, float | int | None] = Field(
        default_factory=dict, description="ranks and scores of each side (only when the request asks to explain)"
    )


class SearchResponse(ResponseBody):
    query: str
    mode: str
    results: list[SearchHit]


class Citation(ResponseBody):
    """A passage an answer cites as [number]."""

    number: int
    chunk_id: int
    document_id: int
    path: str
    title: str
    page: int | None
    quote: str


class AnswerUsage(ResponseBody):
    """Tokens and cost of a written answer (an empty object for extractive answers)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = Field(default=None, description="null when the model's price is unknown")
    passages: int = 0


class AskResponse(ResponseBody):
    question: str
    answer: str
    mode: Literal["extractive", "chat"]
    model: str | None
    abstained: bool
    citations: list[Citation]
    dropped_citations: list[int] = Field(description="numbers the model cited that were not among the passages")
    usage: AnswerUsage
    results: list[SearchHit]
    notes: list[str]


# Indexes


class ChatStats(ResponseBody):
    """The chat model's usage since the server started."""

    model: str
    answers: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class Segment(ResponseBody):
    """One immutable vector segment of the index."""

    id: int
    kind: Literal["flat", "hnsw"] = Field(description="flat: exact scan; hnsw: approximate (a graph walk)")
    storage: Literal["f32", "f16", "sq8"]
    vectors: int
    tombstones: int = Field(description="vectors of deleted passages, skipped until a merge drops them")


class MilvusPlace(ResponseBody):
    """Where a Milvus index keeps its passages."""

    uri: str = Field(description="a Milvus Lite file (relative to the index folder) or the server URL")
    collection: str = Field(description="the prefix of the index's collections")


class IndexStats(ResponseBody):
    index: str = Field(description="the index folder")
    store: Literal["local", "milvus"] = Field(description="local: FAISS + SQLite in the folder; milvus: Milvus")
    documents: int
    chunks: int
    tokens: int
    generation: int
    last_ingest: str | None = Field(description="ISO 8601 UTC, like created_at; null before the first ingest")
    embedding_model: str
    dimension: int
    metric: str
    index_type: str
    chunking: dict[str, Any]
    created_at: str
    size_bytes: int
    vector_storage: Literal["f32", "f16", "sq8"]
    segments: list[Segment]
    tombstones: int
    milvus: MilvusPlace | SkipJsonSchema[None] = Field(default=None, description="only for a Milvus index")
    chat: ChatStats | SkipJsonSchema[None] = Field(default=None, description="only when a chat model is configured")


class IndexInfo(ResponseBody):
    name: str
    object: Literal["index"]
    folder: str
    writable: bool = Field(description="whether the caller's key may change this index: upload, delete, ingest")


class IndexReady(IndexStats, IndexInfo):
    """An index and its stats."""


class IndexFailed(IndexInfo):
    """An index that does not open, and why."""

    error: str


class IndexList(ResponseBody):
    object: Literal["list"]
    data: list[IndexReady | IndexFailed]


class Health(ResponseBody):
    status: Literal["ok"]
    documents: int
    chunks: int


class HealthUnavailable(ResponseBody):
    status: Literal["unavailable"]
    error: str


# Documents


class Document(ResponseBody):
    id: int
    object: Literal["document"]
    path: str
    title: str
    type: str
    size: int
    modified: float
    pages: int | None
    attributes: dict[str, str | int | float | bool]
    chunks: int
    tokens: int
    status: str
    last_error: str | None
    content_hash: str
    ingested_at: float | None
    created_at: float


class DocumentList(ResponseBody):
    object: Literal["list"]
    data: list[Document]
    has_more: bool
    last_id: int | None


class DeletedDocument(ResponseBody):
    id: int
    object: Literal["document.deleted"]
    deleted: bool


class UploadCompleted(ResponseBody):
    filename: str
    status: Literal["completed"]
    duplicate: bool = Field(description="the same bytes were uploaded under this name before")
    document: Document | None


class UploadFailed(ResponseBody):
    filename: str
    status: Literal["failed"]
    error: str


class UploadList(ResponseBody):
    object: Literal["list"]
    data: list[Annotated[UploadCompleted | UploadFailed, Field(discriminator="status")]]


# What the web page reads: facets and a document's passages


class FacetCount(ResponseBody):
    value: bool | int | float | str = Field(description="as the attribute has it: a string, number or boolean")
    documents: int


class TypeCount(ResponseBody):
    value: str = Field(description="a file type: text, markdown, rst, html, pdf")
    documents: int


class AttributeFacet(ResponseBody):
    key: str
    values: list[FacetCount] = Field(description=f"the most frequent values first, at most {FACET_LIMIT}")
    more: bool = Field(description="true when the key has more values than those listed")


class Facets(ResponseBody):
    """What the documents' filters can choose from: their types and attribute values, with document counts."""

    object: Literal["facets"]
    documents: int
    types: list[TypeCount]
    attributes: list[AttributeFacet] = Field(description=f"the {FACET_LIMIT} keys most documents have, most first")
    more_keys: bool = Field(description=f"whether some keys were left out (more than {FACET_LIMIT})")


class Passage(ResponseBody):
    chunk_id: int
    document_id: int
    path: str
    title: str
    page: int | None
    heading: str
    text: str
    char_start: int | None
    char_end: int | None


class PassageList(ResponseBody):
    object: Literal["list"]
    document: Document
    data: list[Passage] = Field(description="in their order in the document")


# Ingest jobs


class JobProgress(ResponseBody):
    files_done: int
    files_total: int
    fraction: float
    eta_seconds: float | None


class JobCounts(ResponseBody):
    files_seen: int
    ingested: int
    unchanged: int
    removed: int
    chunks: int
    tokens: int
    embedded: int


class FileError(ResponseBody):
    path: str
    reason: str


class Job(ResponseBody):
    """An ingest job; `counts` and `file_errors` appear once it has run."""

    id: str
    object: Literal["ingest.job"]
    index: str
    path: str
    status: Literal["queued", "in_progress", "completed", "failed", "cancelled"]
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: JobProgress
    error: str | None
    counts: JobCounts | SkipJsonSchema[None] = None
    file_errors: list[FileError] | SkipJsonSchema[None] = None


class JobList(ResponseBody):
    object: Literal["list"]
    data: list[Job]


# Errors


class ErrorDetail(ResponseBody):
    loc: list[str | int]
    msg: str


class ErrorBody(ResponseBody):
    type: str = Field(description="a stable kind: not_found, invalid_request, invalid_query, unauthorized, ...")
    message: str = Field(description="what went wrong and what to do next")
    details: list[ErrorDetail] | SkipJsonSchema[None] = Field(
        default=None, description="each field the request got wrong (invalid_request only)"
    )


class ErrorResponse(ResponseBody):
    """The API's one error shape, whatever the status."""

    error: ErrorBody


_WHY = {
    400: "The request cannot be served as asked",
    401: "No API key, or an unknown one",
    403: "The API key may not do this, or not on this index",
    404: "No such index, document, job or model",
    409: "Conflicts with the index: it exists, is busy, or was built with another embedding model",
    413: "The body, or the number of files, is over the server's limit",
    422: "The request is invalid; the message says which field and why",
    429: "The key's request budget is spent; retry after `retry-after` seconds",
    500: "The server failed (configuration or an unexpected error)",
    502: "An upstream server (embeddings, chat) failed",
    503: "An upstream server, or the index, is unavailable",
}


def errors(*codes: int, model: type[BaseModel] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` documenting these status codes as `model` (the one error shape by default)."""
    return {code: {"model": model, "description": _WHY[code]} for code in codes}


def returns(model: type[BaseModel]) -> dict[str, Any]:
    """Route options: the body is `model`, and keys the route leaves out stay out (`**returns(Model)`)."""
    return {"response_model": model, "response_model_exclude_unset": True}


def text_body(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route whose 200 is text (`media_type`), not JSON; an event stream's events."""
    schema = SSE_EVENT if media_type == "text/event-stream" else {"type": "string"}
    return {200: {"description": description, "content": {media_type: {"schema": schema}}}}


_EVENT = {"type": "string"}
SSE_EVENT = {  # what `schema` describes for text/event-stream before OpenAPI 3.2: one event
    "type": "object",
    "properties": {"data": _EVENT, "event": _EVENT, "id": _EVENT, "retry": {"type": "integer"}},
    "required": ["data"],
}


GUARDED = (401, 403, 413, 422, 429, 500)  # what any route behind the API-key guard may answer
