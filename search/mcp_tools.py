"""The MCP tools over a `SearchService`: their arguments (pydantic models, so each has a JSON schema) and what they do.

Both transports share them: `semsearch mcp` (stdio) and `/mcp` on `semsearch serve`. A passage is
named `passage:<chunk id>` and a document `document:<id>`; `fetch` takes either, as OpenAI's
deep-research `fetch` tool does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from indexes import Comparison, Index, IndexNotFound, StoredChunk, StoredDocument, all_of
from search.answers.extractive import Citation
from search.errors import InvalidQuery
from search.filters import parse_filters
from search.fusion import DEFAULT_FUSION, FUSIONS
from search.retrieve import DEFAULT_MODE, MODES, Hit
from search.service import SearchService
from search.settings import DEFAULT_ASK_K, DEFAULT_K, MAX_K, MAX_QUERY_CHARS

MAX_DOCUMENT_CHARS = 1_000_000  # the most text one get_document call returns
_FILTERS = (
    'OpenAI-style attribute filter, e.g. {"key": "type", "type": "eq", "value": "pdf"} or '
    '{"type": "and", "filters": [...]}; keys: path, type, title, size, pages, modified, or a document attribute'
)
_INDEX = "the index to use, by name (as GET /indexes lists them); omit it for the default index"


class ToolArguments(BaseModel):
    """A tool's arguments: only these keys, so a misspelt one is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")
    index: str | None = Field(default=None, description=_INDEX)


class SearchArguments(ToolArguments):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="what to look for, in plain words")
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K, description="how many passages to return")
    mode: str = Field(
        default=DEFAULT_MODE,
        json_schema_extra={"enum": list(MODES)},
        description="hybrid (meaning and words, fused), dense (meaning) or lexical (BM25 words)",
    )
    fusion: str = Field(
        default=DEFAULT_FUSION, json_schema_extra={"enum": list(FUSIONS)}, description="how hybrid mode fuses"
    )
    filters: dict[str, Any] | None = Field(default=None, description=_FILTERS)
    min_score: float | None = Field(default=None, ge=0, le=1, description="only passages scoring at least this")


class AskArguments(ToolArguments):
    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the question to answer")
    k: int = Field(default=DEFAULT_ASK_K, ge=1, le=MAX_K, description="how many passages to answer from")
    mode: str = Field(default=DEFAULT_MODE, json_schema_extra={"enum": list(MODES)}, description="as in search")
    filters: dict[str, Any] | None = Field(default=None, description=_FILTERS)


class ListDocumentsArguments(ToolArguments):
    limit: int = Field(default=20, ge=1, le=100, description="documents per page")
    after: int = Field(default=0, ge=0, description="the last_id of the previous page (0: the first page)")
    path_prefix: str | None = Field(default=None, description="only documents whose path starts with this")
    type: str | None = Field(default=None, description="only documents of this type, e.g. pdf, md, txt, html")


class GetDocumentArguments(ToolArguments):
    id: int = Field(ge=0, description="the document's id (document_id in search results)")
    max_chars: int = Field(default=50_000, ge=1, le=MAX_DOCUMENT_CHARS, description="the most text to return")


class FetchArguments(ToolArguments):
    id: str = Field(
        min_length=1, description="a search result's id: passage:<chunk id>, or document:<document id> for its text"
    )


def search(service: SearchService, args: SearchArguments) -> dict[str, Any]:
    """The passages that best match the query, each naming its document, page and passage."""
    filters = parse_filters(args.filters)
    hits = service.search(args.query, args.k, args.mode, args.fusion, filters, args.min_score)
    return {"query": args.query, "mode": args.mode, "results": [_hit(h) for h in hits]}


def ask(service: SearchService, args: AskArguments) -> dict[str, Any]:
    """An answer from the best passages, and its citations resolved to documents, pages and passages."""
    answer = service.ask(args.question, args.k, args.mode, parse_filters(args.filters))
    return {
        "question": answer.question,
        "answer": answer.answer,
        "mode": answer.mode,
        "model": answer.model,
        "abstained": answer.abstained,
        "citations": [_citation(c) for c in answer.citations],
        "notes": list(answer.notes),
    }


def list_documents(service: SearchService, args: ListDocumentsArguments) -> dict[str, Any]:
    """A page of documents in id order; pass `last_id` as `after` for the next one while `has_more`."""
    parts = [Comparison("type", "eq", args.type)] if args.type else []
    parts += [Comparison("path", "prefix", args.path_prefix)] if args.path_prefix else []
    with service.index.read() as reader:
        found = reader.documents(all_of(parts), after=args.after, limit=args.limit + 1)
    data = [_document(d) for d in found[: args.limit]]
    return {"documents": data, "has_more": len(found) > args.limit, "last_id": data[-1]["id"] if data else None}


def get_document(service: SearchService, args: GetDocumentArguments) -> dict[str, Any]:
    """A document's metadata and its text (its passages put back together), up to `max_chars`."""
    document = _stored_document(service.index, args.id)
    text = document_text(service.index, document)
    return {**_document(document), "text": text[: args.max_chars], "truncated": len(text) > args.max_chars}


def fetch(service: SearchService, args: FetchArguments) -> dict[str, Any]:
    """A passage or a whole document by id, as OpenAI's deep-research `fetch` returns it: id, title, text, url."""
    kind, number = _parse_id(args.id)
    if kind == "document":
        document = _stored_document(service.index, number)
        metadata = {k: v for k, v in _document(document).items() if k not in ("id", "title")}
        title, text = document.record.title, document_text(service.index, document)
        return {"id": args.id, "title": title, "text": text, "url": _url(document.record.path), "metadata": metadata}
    with service.index.read() as reader:
        stored = reader.chunks([number]).get(number)
    if stored is None:
        raise IndexNotFound(f"no passage {number} in this index: use an id from the search tool's results")
    metadata = {k: v for k, v in _passage(stored).items() if k not in ("id", "title", "text")}
    return {"id": args.id, "title": stored.title, "text": stored.text, "url": _url(stored.path), "metadata": metadata}


def document_text(index: Index, document: StoredDocument) -> str:
    """The document's text from its passages in order, the overlap between neighbours kept once."""
    with index.read() as reader:
        passages = reader.passages_of(document.record.path)
    parts: list[str] = []
    end = -1
    for stored in passages:
        chunk = stored.chunk
        exact = chunk.char_start is not None and chunk.char_end == chunk.char_start + len(chunk.text)
        if exact and parts and chunk.char_start is not None and chunk.char_start < end:
            parts.append(chunk.text[end - chunk.char_start :])  # the overlap is already there
        else:
            parts.append(("\n\n" if parts else "") + chunk.text)
        end = chunk.char_end if exact and chunk.char_end is not None else -1
    return "".join(parts)


Tool = Callable[[SearchService, Any], dict[str, Any]]
TOOLS: dict[str, tuple[type[ToolArguments], Tool, str]] = {
    "search": (SearchArguments, search, "Search the indexed documents. " + (search.__doc__ or "")),
    "ask": (AskArguments, ask, "Answer a question from the indexed documents. " + (ask.__doc__ or "")),
    "list_documents": (ListDocumentsArguments, list_documents, list_documents.__doc__ or ""),
    "get_document": (GetDocumentArguments, get_document, get_document.__doc__ or ""),
    "fetch": (FetchArguments, fetch, fetch.__doc__ or ""),
}


def _hit(hit: Hit) -> dict[str, Any]:
    return {"id": f"passage:{hit.chunk_id}", **hit.as_dict(), "url": _url(hit.path)}


def _citation(citation: Citation) -> dict[str, Any]:
    return {"id": f"passage:{citation.stored.chunk_id}", **citation.as_dict(), "url": _url(citation.path)}


def _passage(stored: StoredChunk) -> dict[str, Any]:
    return {"id": f"passage:{stored.chunk_id}", **stored.as_dict()}


def _document(document: StoredDocument) -> dict[str, Any]:
    return {**document.as_dict(), "url": _url(document.record.path)}


def _stored_document(index: Index, document_id: int) -> StoredDocument:
    with index.read() as reader:
        document = reader.document(document_id)
    if document is None:
        raise IndexNotFound(f"no document {document_id} in this index: list_documents gives the ids")
    return document


def _parse_id(value: str) -> tuple[str, int]:
    kind, _, number = value.strip().partition(":")
    if kind not in ("passage", "document") or not number.isdigit():
        raise InvalidQuery(f"id {value!r}: give passage:<chunk id> or document:<document id>, e.g. passage:12")
    return kind, int(number)


def _url(path: str) -> str | None:
    """A file:// URL for an absolute path (a client on the same machine can open it), else None."""
    return Path(path).as_uri() if Path(path).is_absolute() else None
