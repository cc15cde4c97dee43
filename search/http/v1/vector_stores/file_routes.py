"""`/v1/vector_stores/{id}/files` and `/file_batches`: files attached to a store, and batches of them."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from indexes import IndexNotFound, StoredDocument
from search.errors import InvalidQuery

from ... import documents as docs
from ...auth import writes
from ...error_shapes import BadParam
from ...schemas import returns
from .attach import allowed, attach, registry_of, worker_of
from .objects import (
    DOC_PREFIX,
    Status,
    batch_object,
    file_object,
    file_objects,
    find_document,
    page,
    store_state,
)
from .schemas import (
    Deleted,
    FileBatch,
    FileContentPage,
    NewFileBatch,
    NewStoreFile,
    StoreFileChange,
    VectorStoreFile,
    VectorStoreFileList,
)
from .state import BatchRecord, FilesState, editing_files, read_files

Order = Literal["asc", "desc"]
_FILE = "/vector_stores/{vector_store_id}/files/{file_id}"
_BATCH = "/vector_stores/{vector_store_id}/file_batches/{batch_id}"


def add_file_routes(router: APIRouter) -> None:
    """The routes of a store's files and file batches."""
    _add_file_routes(router)
    _add_file_changes(router)
    _add_batch_routes(router)


def _add_file_routes(router: APIRouter) -> None:
    @router.post(
        "/vector_stores/{vector_store_id}/files",
        summary="Attach a file from /v1/files (ingested in the background: status in_progress until done)",
        dependencies=[Depends(writes)],
        **returns(VectorStoreFile),
    )
    def create_file(request: Request, vector_store_id: str, body: NewStoreFile) -> dict[str, Any]:
        allowed(request, vector_store_id)
        attach(request, vector_store_id, [(body.file_id, body.attributes, body.chunking_strategy)], batch_id=None)
        return file_object(registry_of(request), vector_store_id, body.file_id)

    @router.get(
        "/vector_stores/{vector_store_id}/files",
        summary="A vector store's files, a page at a time",
        **returns(VectorStoreFileList),
    )
    def list_files(
        request: Request,
        vector_store_id: str,
        limit: int = Query(20, ge=1, le=100),
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
        filter: Status | None = None,
    ) -> dict[str, Any]:
        allowed(request, vector_store_id)
        files = file_objects(registry_of(request), vector_store_id)
        files = [f for f in files if filter is None or f["status"] == filter]
        return page(files, limit=limit, order=order, after=after, before=before)

    @router.get(_FILE, summary="A vector store's file", **returns(VectorStoreFile))
    def retrieve_file(request: Request, vector_store_id: str, file_id: str) -> Any:
        allowed(request, vector_store_id)
        return _polled(file_object(registry_of(request), vector_store_id, file_id))

    @router.get(_FILE + "/content", summary="The text of a file's passages", **returns(FileContentPage))
    def file_content(request: Request, vector_store_id: str, file_id: str) -> dict[str, Any]:
        allowed(request, vector_store_id)
        document = _document(request, vector_store_id, file_id)
        texts = _passages(request, vector_store_id, document) if document is not None else []
        data = [{"type": "text", "text": text} for text in texts]
        return {"object": "vector_store.file_content.page", "data": data, "has_more": False, "next_page": None}


def _add_file_changes(router: APIRouter) -> None:
    @router.post(
        _FILE, summary="Replace a file's attributes", dependencies=[Depends(writes)], **returns(VectorStoreFile)
    )
    def update_file(request: Request, vector_store_id: str, file_id: str, body: StoreFileChange) -> dict[str, Any]:
        allowed(request, vector_store_id)
        registry = registry_of(request)
        try:
            attributes = docs.check_attributes(dict(body.attributes or {}))
        except InvalidQuery as exc:
            raise BadParam(str(exc), "attributes") from exc
        with registry.write_lock(vector_store_id):
            document = _document(request, vector_store_id, file_id)
            if document is not None:
                docs.set_attributes(registry.service(vector_store_id).index, document.id, attributes)
            if not file_id.startswith(DOC_PREFIX):
                folder, _ = store_state(registry, vector_store_id)
                with editing_files(folder) as state:
                    state.files[file_id] = replace(state.files[file_id], attributes=attributes)
        return file_object(registry, vector_store_id, file_id)

    @router.delete(
        _FILE,
        summary="Remove a file from a vector store (its passages go; the file stays in /v1/files)",
        dependencies=[Depends(writes)],
        **returns(Deleted),
    )
    def delete_file(request: Request, vector_store_id: str, file_id: str) -> dict[str, Any]:
        allowed(request, vector_store_id)
        registry = registry_of(request)
        with registry.write_lock(vector_store_id):
            document = _document(request, vector_store_id, file_id, strict=False)  # a record left behind goes too
            folder, _ = store_state(registry, vector_store_id)
            worker_of(request).cancel(vector_store_id, [file_id])
            if document is not None:  # first: a record left without its document is no longer listed
                docs.delete_document(registry.service(vector_store_id).index, document.id)
            with editing_files(folder) as state:
                state.files.pop(file_id, None)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


def _add_batch_routes(router: APIRouter) -> None:
    @router.post(
        "/vector_stores/{vector_store_id}/file_batches",
        summary="Attach several files at once",
        dependencies=[Depends(writes)],
        **returns(FileBatch),
    )
    def create_batch(request: Request, vector_store_id: str, body: NewFileBatch) -> dict[str, Any]:
        allowed(request, vector_store_id)
        if (body.file_ids is None) == (body.files is None):
            raise BadParam("give either file_ids or files (not both)", "file_ids")
        if body.files is not None:
            items = [(f.file_id, f.attributes, f.chunking_strategy) for f in body.files]
        else:
            items = [(file_id, body.attributes, body.chunking_strategy) for file_id in body.file_ids or []]
        if not items:
            raise BadParam("file_ids: give at least one file", "file_ids")
        batch_id = "vsfb_" + secrets.token_hex(12)
        attach(request, vector_store_id, items, batch_id=batch_id)
        return _batch(request, vector_store_id, batch_id)

    @router.get(_BATCH, summary="A file batch and its counts", **returns(FileBatch))
    def retrieve_batch(request: Request, vector_store_id: str, batch_id: str) -> Any:
        allowed(request, vector_store_id)
        return _polled(_batch(request, vector_store_id, batch_id))

    @router.post(
        _BATCH + "/cancel",
        summary="Cancel a batch: its files not yet started become cancelled",
        dependencies=[Depends(writes)],
        **returns(FileBatch),
    )
    def cancel_batch(request: Request, vector_store_id: str, batch_id: str) -> dict[str, Any]:
        allowed(request, vector_store_id)
        folder, _ = store_state(registry_of(request), vector_store_id)
        current = _batch(request, vector_store_id, batch_id)
        if current["status"] != "in_progress":
            return current  # finished: nothing to cancel, it stays as it ended
        batch, _ = _batch_record(request, vector_store_id, batch_id)
        dropped = worker_of(request).cancel(vector_store_id, batch.file_ids, batch_id=batch_id)
        with editing_files(folder) as state:
            state.batches[batch_id] = replace(state.batches[batch_id], cancelled=True)
            for file_id in dropped:
                record = state.files.get(file_id)
                if record is not None and record.batch_id == batch_id and record.status == "in_progress":
                    state.files[file_id] = replace(record, status="cancelled")
        return _batch(request, vector_store_id, batch_id)

    @router.get(_BATCH + "/files", summary="A batch's files, a page at a time", **returns(VectorStoreFileList))
    def list_batch_files(
        request: Request,
        vector_store_id: str,
        batch_id: str,
        limit: int = Query(20, ge=1, le=100),
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
        filter: Status | None = None,
    ) -> dict[str, Any]:
        allowed(request, vector_store_id)
        batch, _ = _batch_record(request, vector_store_id, batch_id)
        ids = set(batch.file_ids)
        files = [
            f
            for f in file_objects(registry_of(request), vector_store_id)
            if f["id"] in ids and (filter is None or f["status"] == filter)
        ]
        return page(files, limit=limit, order=order, after=after, before=before)


def _batch_record(request: Request, store: str, batch_id: str) -> tuple[BatchRecord, FilesState]:
    """A batch's record and the store's files' state (IndexNotFound if the store has no such batch)."""
    folder, _ = store_state(registry_of(request), store)
    state = read_files(folder)
    batch = state.batches.get(batch_id)
    if batch is None:
        raise IndexNotFound(f"vector store {store!r} has no file batch {batch_id!r}")
    return batch, state


def _batch(request: Request, store: str, batch_id: str) -> dict[str, Any]:
    batch, state = _batch_record(request, store, batch_id)
    return batch_object(store, batch, state.files)


def _polled(body: dict[str, Any]) -> Any:
    """The object, with OpenAI's `openai-poll-after-ms` hint while it is in progress (the SDK's pollers read it)."""
    headers = {"openai-poll-after-ms": "200"} if body["status"] == "in_progress" else {}
    return JSONResponse(body, headers=headers)


def _document(request: Request, store: str, file_id: str, *, strict: bool = True) -> StoredDocument | None:
    """The document a store's file became (None until it is first ingested); IndexNotFound if no such file
    (or, if `strict`, if its document was removed another way)."""
    registry = registry_of(request)
    index = registry.service(store).index
    if file_id.startswith(DOC_PREFIX):
        return find_document(index, file_id)
    folder, _ = store_state(registry, store)
    record = read_files(folder).files.get(file_id)
    if record is None:
        raise IndexNotFound(f"vector store {store!r} has no file {file_id!r}")
    if record.path is None:
        return None
    with index.read() as reader:
        document = reader.document_at(record.path)
    if document is None and record.status == "completed" and strict:
        raise IndexNotFound(f"vector store {store!r} has no file {file_id!r} (its document was removed)")
    return document  # in progress: the document of an earlier attachment, if any


def _passages(request: Request, store: str, document: StoredDocument) -> list[str]:
    index = registry_of(request).service(store).index
    with index.read() as reader:
        return [stored.text for stored in reader.passages_of(document.record.path)]
