"""Documents over HTTP: uploads (stored, deduplicated, ingested), listing, attributes, deletion.

Uploaded files are kept in the index folder under `uploads/<sha256>/<name>`, so a
document can be re-chunked later and the same content uploaded twice is recognised.
A document names its upload by an absolute path, the same whatever folder a server was
started in and however it spelled the index's folder (paths stored relative before keep working).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexes import Comparison, Filter, Index, IndexNotFound, Reader, StoredDocument, storable
from ingest import ChunkingConfig, Files, ingest
from ingest.walk import SUPPORTED_EXTENSIONS, path_key
from search.errors import InvalidQuery
from search.service import SearchService

from .bodies import valid_unicode
from .v1.file_store import store_content

_KEY = re.compile(r"[ !#-\[\]-~]{1,64}")  # what filters can address


MAX_NAME_BYTES = 255  # the longest file name the file systems we store uploads on allow


@dataclass(frozen=True)
class Upload:
    """One uploaded file: its name, bytes and attributes (None: none given, so a stored copy keeps its own).

    `owner` (a vector-store file's id) stores it apart, `uploads/<sha256>/<owner>/<name>`: a document of its own.
    """

    filename: str
    data: bytes
    attributes: dict[str, Any] | None = None
    owner: str | None = None


def store_and_ingest(
    service: SearchService, uploads: list[Upload], chunking: ChunkingConfig | None = None
) -> list[dict[str, Any]]:
    """Store each upload and ingest it (cut by `chunking`, else the index's); one result per file, in order.

    The same bytes under the same name are the same document: it keeps its id, and its attributes
    unless the upload gives attributes, which then replace them in place (nothing is re-embedded).
    """
    results: dict[int, dict[str, Any]] = {}
    fresh: dict[Path, list[tuple[int, Upload]]] = {}
    for n, upload in enumerate(uploads):
        problem = _check(upload)
        path = _stored(service.index.folder, upload) if problem is None else problem
        if isinstance(path, str):
            results[n] = _failed(upload, path)
        elif path in fresh:
            fresh[path].append((n, upload))  # twice in one request
        elif (known := find_by_path(service.index, str(path))) is not None:
            results[n] = _again(service.index, upload, known)
        else:
            fresh[path] = [(n, upload)]
    if fresh:
        files = Files([(path, first[1].attributes or {}) for path, (first, *_) in fresh.items()])
        summary = ingest(service.index, service.embedder, files, chunking=chunking)
        skipped = {s.path: s.reason for s in summary.skipped}
        for path, tries in fresh.items():
            for again, (n, upload) in enumerate(tries):
                results[n] = _result(service.index, upload, path, skipped.get(str(path)), bool(again))
    return [results[n] for n in range(len(uploads))]


def _check(upload: Upload) -> str | None:
    name = Path(upload.filename).name
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        return f"unsupported file type {suffix or '(none)'}; upload one of {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_NAME_BYTES:
        return f"the file name is {size} bytes long; the limit is {MAX_NAME_BYTES}: rename the file"
    if not upload.data:
        return "empty file"
    return None


def uploads_root(index_folder: Path) -> Path:
    """`<index>/uploads`, absolute: the folder a server was started in changes nothing."""
    return index_folder.resolve() / "uploads"


def _uploads_holding(index: Index, path: Path) -> Path | None:
    """The uploads folder holding `path`, as stored now (absolute) or before (relative to the server's folder)."""
    return next((root for root in (uploads_root(index.folder), index.folder / "uploads") if root in path.parents), None)


def _stored(folder: Path, upload: Upload) -> Path | str:
    """Content-addressed storage under `<index>/uploads` (or why the bytes could not be stored)."""
    try:
        return store_content(uploads_root(folder), upload.filename, upload.data, under=upload.owner)
    except OSError as exc:
        return f"cannot store the file: {exc.strerror or exc}"


def remove_orphan_uploads(index: Index) -> list[Path]:
    """Delete stored uploads no document names (a request killed between storing and publishing).

    Call it before this process takes uploads for the index: an upload in flight looks the same.
    """
    removed: list[Path] = []
    root = uploads_root(index.folder)
    for folder in root.iterdir() if root.is_dir() else ():
        for path in folder.iterdir() if folder.is_dir() else ():
            paths = path.iterdir() if path.is_dir() else [path]  # <sha>/<owner>/<name> or <sha>/<name>
            removed += _remove_orphans(index, root, paths)
            _remove_empty(path)
        _remove_empty(folder)
    return removed


def _remove_orphans(index: Index, root: Path, paths: Iterable[Path]) -> list[Path]:
    removed = []
    for path in paths:
        if path.is_file() and (path.name.startswith(".") or not _named(index, root, path)):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _named(index: Index, root: Path, path: Path) -> bool:
    """Whether a document names this stored upload: by its absolute path, or as an older server stored it
    (relative to the folder that server started in, which may not be this one's)."""
    if find_by_path(index, path_key(path)) is not None:
        return True
    inside = path_key(path.relative_to(root))
    pattern = "**/uploads/" + re.sub(r"([*?\[\]\\])", r"\\\1", inside)  # glob metacharacters escaped
    with index.read() as reader:
        return bool(reader.documents(Comparison("path", "glob", pattern), limit=1))


def _remove_empty(folder: Path) -> None:
    if folder.is_dir():
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if nothing is left in it


def _failed(upload: Upload, error: str) -> dict[str, Any]:
    return {"filename": upload.filename, "status": "failed", "error": error}


def _again(index: Index, upload: Upload, known: dict[str, Any]) -> dict[str, Any]:
    """An upload of a stored document: the same document, with the attributes the upload gives, if any."""
    if upload.attributes is not None and upload.attributes != known["attributes"]:
        known = set_attributes(index, known["id"], upload.attributes)
    return {"filename": upload.filename, "status": "completed", "duplicate": True, "document": known}


def _result(index: Index, upload: Upload, path: Path, error: str | None, duplicate: bool) -> dict[str, Any]:
    if error is not None:
        return _failed(upload, error)
    document = find_by_path(index, str(path))
    return {"filename": upload.filename, "status": "completed", "duplicate": duplicate, "document": document}


def find_by_path(index: Index, path: str) -> dict[str, Any] | None:
    with index.read() as reader:
        document = reader.document_at(path)
    return document_json(document) if document else None


def get_document(index: Index, document_id: int) -> dict[str, Any]:
    with index.read() as reader:
        return document_json(stored_document(reader, document_id))


def stored_document(reader: Reader, document_id: int) -> StoredDocument:
    """The document with this id in the reader's snapshot; IndexNotFound (a 404) if there is none."""
    document = reader.document(document_id)
    if document is None:
        raise IndexNotFound(f"no document {document_id} in this index")
    return document


def list_documents(index: Index, *, limit: int, after: int, where: Filter | None = None) -> dict[str, Any]:
    """A page of documents in id order, optionally only those matching a filter."""
    with index.read() as reader:
        found = reader.documents(where, after=after, limit=limit + 1)
    data = [document_json(d) for d in found[:limit]]
    return {"object": "list", "data": data, "has_more": len(found) > limit, "last_id": data[-1]["id"] if data else None}


def set_attributes(index: Index, document_id: int, attributes: dict[str, Any]) -> dict[str, Any]:
    """Replace a document's attributes (filters see them at once; nothing is re-embedded)."""
    get_document(index, document_id)
    with index.writer() as writer:
        writer.set_attributes(document_id, attributes)
    return get_document(index, document_id)


def delete_document(index: Index, document_id: int) -> dict[str, Any]:
    """Remove a document and its passages (and its stored upload)."""
    document = get_document(index, document_id)
    with index.writer() as writer:
        writer.remove([document["path"]])
    path = Path(document["path"])
    if (root := _uploads_holding(index, path)) is not None:
        path.unlink(missing_ok=True)  # only this name: the same bytes may be stored under another
        for folder in path.parents[: len(path.relative_to(root).parents) - 1]:
            _remove_empty(folder)  # <sha>/<owner>/ and <sha>/, each gone once empty
    return {"id": document_id, "object": "document.deleted", "deleted": True}


def parse_attributes(raw: str | None, count: int) -> list[dict[str, Any] | None]:
    """The `attributes` form field: one object for every file, or a list with one per file (null: none given)."""
    if not raw:
        return [None] * count
    value = parse_json(raw, "attributes")
    values = value if isinstance(value, list) else [value] * count
    if len(values) != count or not all(v is None or isinstance(v, dict) for v in values):
        raise InvalidQuery("attributes: give one JSON object for all files, or a list of one object per file")
    return [None if item is None else check_attributes(item) for item in values]


def parse_json(raw: str, field: str) -> Any:
    """A JSON form or query field, or a 422 naming it."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidQuery(f"{field}: not JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise InvalidQuery(f"{field}: the JSON is nested too deeply") from exc


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
        if not storable(value):
            raise InvalidQuery(f"attributes.{key}: a number between -2^63 and 2^63, not NaN or infinite")
        if isinstance(value, str) and not valid_unicode(value):
            raise InvalidQuery(f"attributes.{key}: not valid Unicode (a lone surrogate such as \\ud800)")
    return attributes


def document_json(document: StoredDocument) -> dict[str, Any]:
    """A document as the API shows it (GET /documents/{id})."""
    return {
        "id": document.id,
        "object": "document",
        **document.as_dict(),
        "tokens": document.tokens,
        "status": "completed",
        "last_error": None,
        "content_hash": document.record.content_hash,
        "ingested_at": document.ingested_at,
        "created_at": document.ingested_at or time.time(),
    }
