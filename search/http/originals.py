"""A document's original file, as `GET /documents/{id}/file` sends it: streamed from where it was ingested.

Only a PDF is shown in the browser (inline); anything else is a download that cannot run in our origin
(`attachment`, `Content-Security-Policy: sandbox`, `nosniff`), so an ingested HTML page never runs its scripts
beside the API. A file that is gone is a 404 and one that changed since its ingest a 409, both saying the path.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import quote

from fastapi.responses import FileResponse, Response

from indexes import DocumentRecord, StoredDocument
from ingest import UnreadableDocument
from ingest.run import read_sidecar, sidecar_path

from .error_shapes import error_response


def original_file(document: StoredDocument) -> Response:
    """The document's file, or a 404 (gone) or a 409 (changed since ingest) saying what to do."""
    record = document.record
    path = Path(record.path)
    try:
        checked = ingested_stat(path, record)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        message = f"the original file of document {document.id} cannot be read at {record.path} ({reason}): "
        return error_response(404, "file_not_found", message + "re-ingest it from where it is now, or delete it")
    if checked is None:
        message = f"the file {record.path} changed since it was ingested: re-ingest it, then download it again"
        return error_response(409, "file_changed", message)
    pdf = record.type == "pdf"
    headers = {
        "Content-Disposition": content_disposition("inline" if pdf else "attachment", path.name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",  # behind the API keys: no shared cache keeps it
    }
    if not pdf:
        headers["Content-Security-Policy"] = "sandbox"
    # The length, ETag and ranges come from the stat checked above: a file whose size changes before it is
    # sent is cut off (the connection closes short of the Content-Length), never passed off as whole.
    media_type = "application/pdf" if pdf else "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers=headers, stat_result=checked)


def ingested_stat(path: Path, record: DocumentRecord) -> os.stat_result | None:
    """The file's stat if it holds what was ingested, else None. As ingest itself, the size and modification
    time it recorded are enough; otherwise the content hash must match (read only then). OSError: unreadable.
    """
    if not path.is_file():
        raise FileNotFoundError(2, "no such file")
    with path.open("rb") as file:
        stat = os.fstat(file.fileno())  # of the file read below, even if the path is replaced meanwhile
        if stat.st_size != record.size:
            return None
        if stat.st_mtime == record.mtime:
            return stat
        digest = hashlib.file_digest(file, "sha256")  # streamed, never the whole file in memory
    return stat if record.content_hash in _hashes(digest, path, record) else None


def _hashes(digest: hashlib._Hash, path: Path, record: DocumentRecord) -> set[str]:
    """The content hashes ingest may have given these bytes: alone, or with the attributes it was given
    (the current ones, or a sidecar's), as `ingest.run.hash_bytes` computes them.
    """
    hashes = {digest.hexdigest()}
    for attributes in (record.attributes, _sidecar(path)):
        if attributes:
            salted = digest.copy()
            salted.update(b"\x00" + json.dumps(attributes, sort_keys=True).encode("utf-8"))
            hashes.add(salted.hexdigest())
    return hashes


def _sidecar(path: Path) -> dict[str, object]:
    try:
        return read_sidecar(sidecar_path(path))
    except UnreadableDocument:
        return {}


def content_disposition(kind: str, filename: str) -> str:
    """`kind; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266 with RFC 5987 for any name)."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
