"""Request and response bodies of OpenAI's vector-store routes (the shapes of the `openai` SDK's types)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictBool

from ...bodies import RequestBody
from ...schemas import ResponseBody

Attributes = dict[str, str | int | float | bool]
Status = Literal["in_progress", "completed", "failed", "cancelled"]


# Requests


class ExpiresAfter(RequestBody):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class StaticSizes(RequestBody):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0, description="at most half of max_chunk_size_tokens")


class AutoChunking(RequestBody):
    type: Literal["auto"]


class StaticChunking(RequestBody):
    type: Literal["static"]
    static: StaticSizes


Chunking = AutoChunking | StaticChunking
_METADATA = "up to 16 pairs; keys up to 64 characters, values up to 512"


class NewVectorStore(RequestBody):
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    metadata: dict[str, str] | None = Field(default=None, description=_METADATA)
    expires_after: ExpiresAfter | None = None
    file_ids: list[str] = Field(default_factory=list, max_length=500)
    chunking_strategy: Chunking | None = None


class VectorStoreChange(RequestBody):
    name: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = Field(default=None, description=_METADATA)
    expires_after: ExpiresAfter | None = None


class NewStoreFile(RequestBody):
    file_id: str = Field(max_length=64)
    attributes: Attributes | None = None
    chunking_strategy: Chunking | None = None


class StoreFileChange(RequestBody):
    attributes: Attributes | None


class NewFileBatch(RequestBody):
    file_ids: list[str] | None = Field(default=None, max_length=2000)
    files: list[NewStoreFile] | None = Field(default=None, max_length=2000)
    attributes: Attributes | None = None
    chunking_strategy: Chunking | None = None


class RankingOptions(RequestBody):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float | None = Field(default=None, ge=0, le=1)


class StoreSearch(RequestBody):
    query: str | list[str] = Field(description="a query, or several (up to 10): each is searched, the results merged")
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: dict[str, Any] | None = Field(default=None, description="OpenAI's comparison and compound filters")
    ranking_options: RankingOptions | None = None
    rewrite_query: StrictBool = Field(
        default=False, description="drop question words and punctuation (the searched text is in search_query)"
    )

    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)


# Responses


class FileCounts(ResponseBody):
    in_progress: int
    completed: int
    failed: int
    cancelled: int
    total: int


class ExpiresAfterBody(ResponseBody):
    anchor: Literal["last_active_at"]
    days: int


class VectorStore(ResponseBody):
    id: str
    object: Literal["vector_store"]
    created_at: int
    name: str
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    expires_after: ExpiresAfterBody | None
    expires_at: int | None
    last_active_at: int | None
    metadata: dict[str, str] | None


class VectorStoreList(ResponseBody):
    object: Literal["list"]
    data: list[VectorStore]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Deleted(ResponseBody):
    id: str
    object: Literal["vector_store.deleted", "vector_store.file.deleted"]
    deleted: bool


class LastError(ResponseBody):
    code: Literal["server_error", "unsupported_file", "invalid_file"]
    message: str


class StaticSizesBody(ResponseBody):
    max_chunk_size_tokens: int
    chunk_overlap_tokens: int


class ChunkingBody(ResponseBody):
    type: Literal["static"]
    static: StaticSizesBody


class VectorStoreFile(ResponseBody):
    id: str
    object: Literal["vector_store.file"]
    created_at: int
    vector_store_id: str
    status: Status
    last_error: LastError | None
    usage_bytes: int
    attributes: Attributes | None
    chunking_strategy: ChunkingBody | None


class VectorStoreFileList(ResponseBody):
    object: Literal["list"]
    data: list[VectorStoreFile]
    first_id: str | None
    last_id: str | None
    has_more: bool


class FileBatch(ResponseBody):
    id: str
    object: Literal["vector_store.files_batch"]
    created_at: int
    vector_store_id: str
    status: Status
    file_counts: FileCounts


class TextContent(ResponseBody):
    type: Literal["text"]
    text: str


class FileContentPage(ResponseBody):
    object: Literal["vector_store.file_content.page"]
    data: list[TextContent]
    has_more: bool
    next_page: str | None


class SearchResult(ResponseBody):
    file_id: str
    filename: str
    score: float
    attributes: Attributes | None
    content: list[TextContent]


class SearchResultsPage(ResponseBody):
    object: Literal["vector_store.search_results.page"]
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool
    next_page: str | None
