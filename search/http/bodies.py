"""Request bodies of the HTTP API: strict, so a mistake is a 422 rather than silently ignored.

A field the route does not know (`{"kk": 3}`) is refused, and flags take only `true` or
`false` (`"stream": 0` is not a boolean). The response bodies are in `schemas.py`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from search.fusion import DEFAULT_FUSION, FUSIONS
from search.retrieve import DEFAULT_MODE, MODES
from search.settings import DEFAULT_ASK_K, DEFAULT_K, MAX_K, MAX_QUERY_CHARS

MAX_ID = 2**63 - 1  # document ids are SQLite INTEGERs and FAISS int64 ids
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux: no longer path names a file
_FILTERS = "OpenAI-style attribute filter, applied inside the search"


class RequestBody(BaseModel):
    """A JSON object with only these keys (a base for every request model)."""

    model_config = ConfigDict(extra="forbid")


def _mode() -> Any:
    return Field(default=DEFAULT_MODE, pattern=f"^({'|'.join(MODES)})$", description=", ".join(MODES))


class SearchRequest(RequestBody):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, examples=["how does TCP avoid congestion?"])
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    mode: str = _mode()
    fusion: str = Field(
        default=DEFAULT_FUSION, pattern=f"^({'|'.join(FUSIONS)})$", description="how hybrid mode combines the two sides"
    )
    explain: StrictBool = False
    filters: dict[str, Any] | None = Field(default=None, description=_FILTERS)
    min_score: float | None = Field(default=None, ge=0, le=1, description="only results scoring at least this")
    exact: StrictBool = Field(
        default=False, description="scan every vector (large segments are searched approximately by default)"
    )


class AskRequest(RequestBody):
    """A question, as `question` or (like /search) `query`."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["question"]}, {"required": ["query"]}]},
    )

    question: str | None = Field(
        default=None, min_length=1, max_length=MAX_QUERY_CHARS, examples=["who invented the printing press?"]
    )
    query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_CHARS, description="same as question")
    k: int = Field(default=DEFAULT_ASK_K, ge=1, le=MAX_K, description="passages to retrieve")
    mode: str = _mode()
    stream: StrictBool = Field(default=False, description="server-sent events: answer deltas, then the citations")
    filters: dict[str, Any] | None = Field(default=None, description=_FILTERS)

    @model_validator(mode="after")
    def _one_question(self) -> AskRequest:
        if (self.question is None) == (self.query is None):
            raise ValueError("give the question as `question` (or `query`), once")
        return self

    @property
    def text(self) -> str:
        """The question, whichever field carried it."""
        return self.question if self.question is not None else str(self.query)


class AttributesPatch(RequestBody):
    attributes: dict[str, str | int | float | bool]


class IngestRequest(RequestBody):
    path: str = Field(
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="a folder or file under one of the server's --ingest-root folders",
    )
    include: list[str] = []
    exclude: list[str] = []

    @field_validator("path")
    @classmethod
    def _no_nul(cls, path: str) -> str:
        if "\x00" in path:
            raise ValueError("a path cannot contain a NUL character")
        return path


class NewIndex(RequestBody):
    name: str = Field(description="1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit")
    embedding_model: str | None = Field(default=None, description="local/NAME or openai/NAME; the server's by default")


def valid_unicode(text: str) -> bool:
    """Whether `text` can be sent back as UTF-8 (JSON's `\\ud800` escapes decode to strings that cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
