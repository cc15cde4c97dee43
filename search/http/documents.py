"""Documents over HTTP: uploads (stored, deduplicated, ingested), listing, attributes, deletion.

Uploaded files are kept in the index folder under `uploads/<sha256>/<name>`, so a
document can be re-chunked later and the same content uploaded twice is recognised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexes import Filter, Index, IndexNotFound, IndexWriter, StoredDocument
from ingest import Files, ingest
from ingest.walk import SUPPORTED_EXTENSIONS
from search.errors import InvalidQuery
from search.service import SearchService

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_KEY = re.compile(r"[ !#-\[\]-~]{1,64}")  # what filters can address


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its name, bytes and attributes."""

    filename: str
    data: bytes
    attributes: dict[str, Any]


def store_and_ingest(service: SearchService, uploads: list[Upload]) -> list[dict[str, Any]]:
    """Store each upload and ingest it; returns one result per file (document, or error)."""
    results: list[dict[str, Any]] = []
    stored: list[tuple[Upload, Path]] = []
    for upload in uploads:
        problem = _check(upload)
        if problem:
            results.append({"filename": upload.filename, "status": "failed", "error": problem})
            continue
        stored.append((upload, _store(service.index.folder, upload)))
    before = {str(path) for _, path in stored if find_by_path(service.index, str(path)) is not None}
    summary = ingest(service.index, service.embedder, Files([(path, upload.attributes) for upload, path in stored]))
    skipped = {s.path: s.reason for s in summary.skipped}
    for upload, path in stored:
        results.append(_result(service.index, upload, path, skipped.get(str(path)), str(path) in before))
    return results


def _check(upload: Upload) -> str | None:
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        return f"unsupported file type {suffix or '(none)'}; upload one of {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
    if not upload.data:
        return "empty file"
    return None


def _store(folder: Path, upload: Upload) -> Path:
    """Content-addressed storage: the same bytes land at the same path."""
    digest = hashlib.sha256(upload.data).hexdigest()
    name = _SAFE_NAME.sub("_", Path(upload.filename).name).strip() or "upload"
    target = folder / "uploads" / digest / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_bytes(upload.data)
        os.replace(tmp, target)
    return target


def _result(index: Index, upload: Upload, path: Path, error: str | None, existed: bool) -> dict[str, Any]:
    if error is not None:
        return {"filename": upload.filename, "status": "failed", "error": error}
    document = find_by_path(index, str(path))
    return {"filename": upload.filename, "status": "completed", "duplicate": existed, "document": document}


def find_by_path(index: Index, path: str) -> dict[str, Any] | None:
    with index.read() as reader:
        document = reader.document_at(path)
    return _document(document) if document else None


def get_document(index: Index, document_id: int) -> dict[str, Any]:
    with index.read() as reader:
        document = reader.document(document_id)
    if document is None:
        raise IndexNotFound(f"no document {document_id} in this index")
    return _document(document)


def list_documents(index: Index, *, limit: int, after: int, where: Filter | None = None) -> dict[str, Any]:
    """A page of documents in id order, optionally only those matching a filter."""
    with index.read() as reader:
        found = reader.documents(where, after=after, limit=limit + 1)
    data = [_document(d) for d in found[:limit]]
    return {"object": "list", "data": data, "has_more": len(found) > limit, "last_id": data[-1]["id"] if data else None}


def set_attributes(index: Index, document_id: int, attributes: dict[str, Any]) -> dict[str, Any]:
    """Replace a document's attributes (filters see them at once; nothing is re-embedded)."""
    get_document(index, document_id)
    with IndexWriter(index) as writer:
        writer.set_attributes(document_id, attributes)
    return get_document(index, document_id)


def delete_document(index: Index, document_id: int) -> dict[str, Any]:
    """Remove a document and its passages (and its stored upload)."""
    document = get_document(index, document_id)
    with IndexWriter(index) as writer:
        writer.remove([document["path"]])
    path = Path(document["path"])
    if index.folder / "uploads" in path.parents:
        path.unlink(missing_ok=True)  # only this name: the same bytes may be stored under another
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # gone once empty
    return {"id": document_id, "object": "document.deleted", "deleted": True}


def parse_attributes(raw: str | None, count: int) -> list[dict[str, Any]]:
    """The `attributes` form field: one object for every file, or a list with one per file."""
    if not raw:
        return [{} for _ in range(count)]
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidQuery(f"attributes: not JSON ({exc.msg})") from exc
    values = value if isinstance(value, list) else [value] * count
    if len(values) != count or not all(isinstance(v, dict) for v in values):
        raise InvalidQuery("attributes: give one JSON object for all files, or a list of one object per file")
    for item in values:
        check_attributes(item)
    return values


def check_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attributes are at most 16 keys of strings (<= 512 chars), numbers or booleans, as in OpenAI's API."""
    if len(attributes) > 16:
        raise InvalidQuery("attributes: at most 16 keys")
    for key, value in attributes.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidQuery(
                f"attributes: key {key!r} must be 1 to 64 printable ASCII characters, without quotes or backslashes"
            )
        if not isinstance(value, str | int | float | bool) or (isinstance(value, str) and len(value) > 512):
            raise InvalidQuery(f"attributes.{key}: a string (up to 512 characters), number or boolean")
    return attributes


def _document(document: StoredDocument) -> dict[str, Any]:
    record = document.record
    return {
        "id": document.id,
        "object": "document",
        "path": record.path,
        "title": record.title,
        "type": record.type,
        "size": record.size,
        "modified": record.mtime,
        "pages": record.pages,
        "attributes": record.attributes,
        "chunks": document.chunks,
        "tokens": document.tokens,
        "status": "completed",
        "last_error": None,
        "content_hash": record.content_hash,
        "ingested_at": document.ingested_at,
        "created_at": document.ingested_at or time.time(),
    }
