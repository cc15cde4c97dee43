"""What the web page reads besides search and ask, per index: facets for its filters, a document's passages
in order, and a document's original file.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from indexes.facets import FACET_LIMIT
from search.service import SearchService

from . import schemas
from .documents import document_json, stored_document
from .originals import original_file
from .routes import DocumentId, service
from .schemas import returns

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes: a PDF inline, anything else as an attachment (sandboxed, never rendered)",
        "content": {"application/pdf": _BINARY, "application/octet-stream": _BINARY},
    }
}


def browse_router() -> APIRouter:
    """`/facets`, `/documents/{id}/passages` and `/documents/{id}/file` for one index."""
    router = APIRouter()

    @router.get(
        "/facets",
        summary=f"Documents by file type and by attribute value ({FACET_LIMIT} keys, {FACET_LIMIT} values a key, "
        "most frequent first)",
        **returns(schemas.Facets),
    )
    def facets(svc: SearchService = Depends(service)) -> dict[str, Any]:
        return svc.facets().as_dict()

    @router.get(
        "/documents/{document_id}/passages",
        summary="A document and its passages, in their order in it",
        **returns(schemas.PassageList),
    )
    def passages(document_id: DocumentId, svc: SearchService = Depends(service)) -> dict[str, Any]:
        with svc.index.read() as reader:  # the document and its passages from one snapshot
            document = stored_document(reader, document_id)
            found = reader.passages_of(document.record.path)
        return {"object": "list", "document": document_json(document), "data": [p.as_dict() for p in found]}

    @router.get(
        "/documents/{document_id}/file",
        summary="A document's original file (404 when it is gone, 409 when it changed since ingest)",
        response_class=Response,
        responses=_FILE,
    )
    def original(document_id: DocumentId, svc: SearchService = Depends(service)) -> Response:
        with svc.index.read() as reader:
            document = stored_document(reader, document_id)
        return original_file(document)

    return router
