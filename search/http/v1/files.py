"""OpenAI's Files API (`/v1/files`): upload, list (cursor pages), retrieve, download, delete.

Files are server-wide (not an index's): any key that may write can upload, including one scoped to
some indexes. The bytes live in the server's FileStore (`<index>/openai/files`), content-addressed.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse

from search.errors import TooLarge

from ..auth import writes
from ..documents import MAX_NAME_BYTES
from ..error_shapes import BadParam
from ..schemas import ResponseBody, errors, returns
from .embeddings import OpenAIError
from .file_store import FileStore, safe_name
from .pages import list_object

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")  # what OpenAI takes on upload
MIN_EXPIRY, MAX_EXPIRY = 3600, 2_592_000  # OpenAI's bounds on `expires_after.seconds`: an hour to 30 days
FileId = Annotated[str, Path(description="a file's id, `file-...`", max_length=64)]


class FileBody(ResponseBody):
    """OpenAI's `file` object."""

    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    expires_at: int | None
    status_details: str | None


class FileList(ResponseBody):
    object: Literal["list"]
    data: list[FileBody]
    has_more: bool
    first_id: str | None
    last_id: str | None


class FileDeleted(ResponseBody):
    id: str
    object: Literal["file"]
    deleted: bool


def file_store(request: Request) -> FileStore:
    store: FileStore = request.app.state.files
    return store


def files_router() -> APIRouter:
    """The `/v1/files` routes."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
    not_found = errors(404, model=OpenAIError)

    @router.post(
        "/files",
        summary="Upload a file (multipart `file` and `purpose`), for vector stores or batches",
        dependencies=[Depends(writes)],
        responses=errors(400, model=OpenAIError),
        **returns(FileBody),
    )
    def create(
        request: Request,
        file: UploadFile = File(..., description="the file's bytes; its name is kept"),
        purpose: str = Form(..., description=f"one of {', '.join(PURPOSES)}; `batch` files must be .jsonl"),
        anchor: str | None = Form(None, alias="expires_after[anchor]", description="`created_at`"),
        seconds: int | None = Form(None, alias="expires_after[seconds]", description="3600 to 2592000"),
        store: FileStore = Depends(file_store),
    ) -> dict[str, Any]:
        filename = file.filename or "upload"
        _check_upload(filename, purpose)
        expires_after = _expiry(anchor, seconds)
        data = _read(file, request.app.state.limits.max_upload_bytes)
        return store.add(filename, data, purpose, expires_after=expires_after).as_dict()

    @router.get("/files", summary="Files, newest first by default, a page at a time", **returns(FileList))
    def list_files(
        limit: int = Query(10_000, ge=1, le=10_000),
        order: Literal["asc", "desc"] = "desc",
        after: str | None = Query(None, max_length=64, description="the last id of the previous page"),
        before: str | None = Query(None, max_length=64, description="the first id of the next page"),
        purpose: str | None = Query(None, max_length=64),
        store: FileStore = Depends(file_store),
    ) -> dict[str, Any]:
        page, more = store.page(purpose=purpose, limit=limit, order=order, after=after, before=before)
        return list_object([record.as_dict() for record in page], more)

    @router.get("/files/{file_id}", summary="One file", responses=not_found, **returns(FileBody))
    def retrieve(file_id: FileId, store: FileStore = Depends(file_store)) -> dict[str, Any]:
        return store.get(file_id).as_dict()

    @router.get(
        "/files/{file_id}/content",
        summary="A file's bytes",
        response_class=FileResponse,
        responses={**not_found, 200: {"description": "the bytes", "content": _BINARY}},
    )
    def content(file_id: FileId, store: FileStore = Depends(file_store)) -> FileResponse:
        record = store.get(file_id)
        media_type = mimetypes.guess_type(safe_name(record.filename))[0] or "application/octet-stream"
        return FileResponse(store.path(file_id), media_type=media_type)

    @router.delete(
        "/files/{file_id}",
        summary="Delete a file (documents made from it stay in their vector stores)",
        dependencies=[Depends(writes)],
        responses=not_found,
        **returns(FileDeleted),
    )
    def delete(file_id: FileId, store: FileStore = Depends(file_store)) -> dict[str, Any]:
        if not store.delete(file_id):
            store.get(file_id)  # raises the 404
        return {"id": file_id, "object": "file", "deleted": True}

    return router


_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _check_upload(filename: str, purpose: str) -> None:
    """A 400 naming the field for a purpose OpenAI does not take, a batch file that is not JSONL, a long name."""
    if purpose not in PURPOSES:
        raise BadParam(f"{purpose!r} is not a purpose: use one of {', '.join(PURPOSES)}", "purpose")
    if purpose == "batch" and FilePath(filename).suffix.lower() != ".jsonl":
        raise BadParam(f"a batch file must be JSONL (a .jsonl name), not {filename!r}", "file")
    size = len(safe_name(filename).encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES:
        raise BadParam(f"the file name is {size} bytes long; the limit is {MAX_NAME_BYTES}: rename the file", "file")


def _expiry(anchor: str | None, seconds: int | None) -> int | None:
    """`expires_after`: None, or seconds after creation (OpenAI's one anchor, within its bounds)."""
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise BadParam("expires_after.anchor must be `created_at`", "expires_after.anchor")
    if seconds is None or not MIN_EXPIRY <= seconds <= MAX_EXPIRY:
        raise BadParam(
            f"expires_after.seconds must be {MIN_EXPIRY} to {MAX_EXPIRY} (an hour to 30 days)", "expires_after.seconds"
        )
    return seconds


def _read(file: UploadFile, limit: int) -> bytes:
    """The upload's bytes: a 400 if there are none, a 413 past the server's upload limit (0: none)."""
    data = file.file.read(limit + 1) if limit > 0 else file.file.read()
    if limit > 0 and len(data) > limit:
        raise TooLarge(f"the file is over {limit:,} bytes, the server's upload limit: upload a smaller file")
    if not data:
        raise BadParam("the file is empty: upload a file with content", "file")
    return data
