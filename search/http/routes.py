"""The HTTP routes: search, ask and documents for each index, and the server-wide ones.

The same per-index router is mounted twice: at the root for the default index and
under `/indexes/{name}` for every index the server knows.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from indexes import Comparison, Filter, all_of
from ingest import WalkOptions
from search.errors import ERROR_FAMILIES, Forbidden
from search.filters import parse_filters
from search.http import documents as docs
from search.service import SearchService

from . import schemas
from .auth import writes
from .bodies import MAX_ID, AskRequest, AttributesPatch, IngestRequest, NewIndex, SearchRequest
from .error_shapes import error_response, log
from .jobs import Job, JobManager
from .registry import DEFAULT, IndexRegistry
from .schemas import returns, text_body

_STREAMED = (
    "The answer; with `stream: true`, server-sent events instead: "
    "`data: {json}` each (answer deltas, then the answer), then `data: [DONE]`"
)
DocumentId = Annotated[int, Path(ge=0, le=MAX_ID, description="a document's id")]


def registry(request: Request) -> IndexRegistry:
    registry: IndexRegistry = request.app.state.registry
    return registry


def named_index(name: str = Path(description="the index's name, as GET /indexes lists it")) -> str:
    """Declares the `{name}` of `/indexes/{name}/...` (the routes read it through `index_name`)."""
    return name


def index_name(request: Request) -> str:
    return str(request.path_params.get("name", DEFAULT))


def service(request: Request) -> SearchService:
    return registry(request).service(index_name(request))


def index_router() -> APIRouter:
    """Search, ask, stats, documents and ingest jobs for one index."""
    router = APIRouter()

    @router.post(
        "/search",
        summary="The passages that best match a query",
        responses=schemas.errors(400),
        **returns(schemas.SearchResponse),
    )
    def search(request: Request, body: SearchRequest, svc: SearchService = Depends(service)) -> dict[str, Any]:
        filters = parse_filters(body.filters)
        hits = svc.search(body.query, body.k, body.mode, body.fusion, filters, body.min_score, exact=body.exact)
        return {"query": body.query, "mode": body.mode, "results": [h.as_dict(explain=body.explain) for h in hits]}

    @router.post(
        "/ask",
        summary="An answer drawn from the best passages, with citations",
        responses={**schemas.errors(400), **text_body("text/event-stream", _STREAMED)},
        **returns(schemas.AskResponse),
    )
    def ask(request: Request, body: AskRequest, svc: SearchService = Depends(service)) -> Any:
        filters = parse_filters(body.filters)  # a bad filter is a 422 before any streaming
        if not body.stream:
            return svc.ask(body.text, body.k, body.mode, filters).as_dict()
        events = svc.ask_stream(body.text, body.k, body.mode, filters)
        first = next(events)  # errors before the first byte still get their own status code
        return StreamingResponse(_sse(itertools.chain([first], events)), media_type="text/event-stream")

    @router.get("/stats", summary="Documents, chunks, model, index type, size on disk", **returns(schemas.IndexStats))
    def stats(svc: SearchService = Depends(service)) -> dict[str, Any]:
        return svc.stats()

    @router.post(
        "/documents",
        status_code=201,
        summary="Upload files (multipart) with optional JSON attributes",
        dependencies=[Depends(writes)],
        responses=schemas.errors(400),
        **returns(schemas.UploadList),
    )
    def upload(
        request: Request,
        files: list[UploadFile] = File(...),
        attributes: str | None = Form(None),
        svc: SearchService = Depends(service),
    ) -> Any:
        request.app.state.limits.check_files(len(files))
        values = docs.parse_attributes(attributes, len(files))
        uploads = [docs.Upload(f.filename or "upload", f.file.read(), a) for f, a in zip(files, values)]
        with registry(request).write_lock(index_name(request)):
            results = docs.store_and_ingest(svc, uploads)
        fresh = [r for r in results if r["status"] == "completed" and not r["duplicate"]]
        chunks = sum(r["document"]["chunks"] for r in fresh)
        request.app.state.metrics.count_ingest(index_name(request), len(fresh), chunks)
        if all(r["status"] == "failed" for r in results):
            return _nothing_stored(results)
        return {"object": "list", "data": results}

    @router.get("/documents", summary="Documents, a page at a time", **returns(schemas.DocumentList))
    def list_documents(
        limit: int = Query(20, ge=1, le=100),
        after: int = Query(0, ge=0, le=MAX_ID, description="the last id of the previous page"),
        type: str | None = None,
        path_prefix: str | None = None,
        filters: str | None = Query(None, description="a JSON filter, as in /search"),
        svc: SearchService = Depends(service),
    ) -> dict[str, Any]:
        where = _document_filter(type, path_prefix, filters)
        return docs.list_documents(svc.index, limit=limit, after=after, where=where)

    @router.get(
        "/documents/{document_id}", summary="One document: status, chunks, attributes", **returns(schemas.Document)
    )
    def get_document(document_id: DocumentId, svc: SearchService = Depends(service)) -> dict[str, Any]:
        return docs.get_document(svc.index, document_id)

    @router.patch(
        "/documents/{document_id}",
        summary="Replace a document's attributes",
        dependencies=[Depends(writes)],
        responses=schemas.errors(400),
        **returns(schemas.Document),
    )
    def patch_document(
        request: Request, document_id: DocumentId, body: AttributesPatch, svc: SearchService = Depends(service)
    ) -> dict[str, Any]:
        with registry(request).write_lock(index_name(request)):
            return docs.set_attributes(svc.index, document_id, docs.check_attributes(dict(body.attributes)))

    @router.delete(
        "/documents/{document_id}",
        summary="Remove a document and its passages",
        dependencies=[Depends(writes)],
        **returns(schemas.DeletedDocument),
    )
    def delete_document(
        request: Request, document_id: DocumentId, svc: SearchService = Depends(service)
    ) -> dict[str, Any]:
        with registry(request).write_lock(index_name(request)):
            return docs.delete_document(svc.index, document_id)

    @router.post(
        "/ingest",
        status_code=202,
        summary="Ingest a server-side folder as a background job",
        dependencies=[Depends(writes)],
        responses=schemas.errors(400),
        **returns(schemas.Job),
    )
    def ingest(request: Request, body: IngestRequest) -> dict[str, Any]:
        jobs: JobManager = request.app.state.jobs
        return jobs.submit(index_name(request), body.path, WalkOptions(body.include, body.exclude)).as_dict()

    return router


def server_router() -> APIRouter:
    """Routes about the server as a whole: its indexes and its jobs."""
    router = APIRouter()

    @router.get("/indexes", summary="The indexes this server serves", **returns(schemas.IndexList))
    def list_indexes(request: Request) -> dict[str, Any]:
        reg = registry(request)
        data = []
        for name, folder in reg.folders().items():
            if not request.state.principal.may_use(name):
                continue
            writable = request.state.principal.write
            entry: dict[str, Any] = {"name": name, "object": "index", "folder": str(folder), "writable": writable}
            try:
                entry.update(reg.service(name).stats())
            except ERROR_FAMILIES as exc:
                entry["error"] = str(exc)
            data.append(entry)
        return {"object": "list", "data": data}

    @router.post(
        "/indexes",
        status_code=201,
        summary="Create an empty index under the server's --index-root",
        dependencies=[Depends(writes)],
        responses=schemas.errors(400),
        **returns(schemas.IndexInfo),
    )
    def create_index(request: Request, body: NewIndex) -> dict[str, Any]:
        if not request.state.principal.may_use(body.name):
            raise Forbidden(f"this API key has no access to an index named {body.name!r}")
        folder = registry(request).create(body.name, body.embedding_model)
        return {"name": body.name, "object": "index", "folder": str(folder), "writable": True}

    @router.get("/jobs", summary="Ingest jobs, newest first", **returns(schemas.JobList))
    def list_jobs(request: Request) -> dict[str, Any]:
        jobs = [job for job in request.app.state.jobs.list() if request.state.principal.may_use(job.index)]
        return {"object": "list", "data": [job.as_dict() for job in jobs]}

    @router.get(
        "/jobs/{job_id}",
        summary="An ingest job: status, counts, per-file errors, progress, ETA",
        **returns(schemas.Job),
    )
    def get_job(request: Request, job_id: str) -> dict[str, Any]:
        return dict(_job(request, job_id).as_dict())

    @router.delete(
        "/jobs/{job_id}", summary="Cancel an ingest job", dependencies=[Depends(writes)], **returns(schemas.Job)
    )
    def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
        return dict(request.app.state.jobs.cancel(_job(request, job_id).id).as_dict())

    return router


def _job(request: Request, job_id: str) -> Job:
    """A job the caller's key may see (another index's job is a 403, like its other routes)."""
    job: Job = request.app.state.jobs.get(job_id)
    if not request.state.principal.may_use(job.index):
        raise Forbidden(f"this API key has no access to the index of job {job_id}")
    return job


def _document_filter(kind: str | None, path_prefix: str | None, filters: str | None) -> Filter | None:
    """The documents a listing asks for: its JSON filter, its type and its path prefix, all at once."""
    parts: list[Filter] = []
    if filters:
        parsed = parse_filters(docs.parse_json(filters, "filters"))
        parts += [parsed] if parsed is not None else []
    if kind:
        parts.append(Comparison("type", "eq", kind))
    if path_prefix:
        parts.append(Comparison("path", "prefix", path_prefix))
    return all_of(parts)


def _nothing_stored(results: list[dict[str, Any]]) -> JSONResponse:
    """A 422 for an upload of which no file could be stored, naming each file and why."""
    reasons = [f"{r['filename']}: {r['error']}" for r in results]
    details = [{"loc": ["files", n], "msg": reason} for n, reason in enumerate(reasons)]
    return error_response(422, "invalid_upload", "no file was stored; " + "; ".join(reasons), details=details)


def _sse(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    """Server-sent events: `data: {json}` per event, then `data: [DONE]`; a late error is an event too."""
    try:
        for event in events:
            if event["type"] == "answer":
                event = {"type": "answer", **event["answer"].as_dict()}
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
    except ERROR_FAMILIES as exc:
        yield f"data: {json.dumps({'type': 'error', 'error': {'type': type(exc).__name__, 'message': str(exc)}})}\n\n"
    except Exception:  # the status line is sent: an event, not a dropped connection, tells the client
        log.exception("unexpected error in an answer stream")
        error = {"type": "internal_error", "message": "the server failed unexpectedly (its log has the details)"}
        yield f"data: {json.dumps({'type': 'error', 'error': error})}\n\n"
    yield "data: [DONE]\n\n"
