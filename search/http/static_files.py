"""Files served out of the package (the docs' scripts, the web page): gzipped once when the client accepts it,
with an ETag, so a browser that has the file gets a 304 instead of the bytes.

Callers decide which files exist; this module never turns a request's words into a path.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from collections.abc import Mapping
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response

_UNZIPPED = ("image/png", "image/jpeg", "image/webp", "font/woff2")  # compressed already


def static_response(request: Request, path: Path, media_type: str, headers: Mapping[str, str]) -> Response:
    """`path`'s bytes as `media_type` with `headers`, gzipped if accepted; a 304 when the client's ETag matches."""
    stat = path.stat()
    version = (stat.st_mtime_ns, stat.st_size)  # a file edited while the server runs is read again
    data, etag = _read(path, version)
    zipped = accepts_gzip(request) and not media_type.startswith(_UNZIPPED)
    sent = {**headers, "ETag": etag, "Vary": "Accept-Encoding"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=sent)
    if zipped:
        sent["Content-Encoding"] = "gzip"
    return Response(_gzipped(path, version) if zipped else data, media_type=media_type, headers=sent)


def accepts_gzip(request: Request) -> bool:
    """Whether the request's Accept-Encoding takes gzip (`gzip;q=0` refuses it)."""
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        name, _, params = part.partition(";")
        if name.strip() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match compares weakly: `W/"x"` matches `"x"`; `*` matches anything."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


@functools.lru_cache(maxsize=64)
def _read(path: Path, version: tuple[int, int]) -> tuple[bytes, str]:
    """A file's bytes and its weak ETag (weak: the gzipped and plain bodies share it)."""
    data = path.read_bytes()
    return data, f'W/"{hashlib.sha256(data).hexdigest()[:32]}"'


@functools.lru_cache(maxsize=64)
def _gzipped(path: Path, version: tuple[int, int]) -> bytes:
    """A file's bytes gzipped, once per version (scripts and styles shrink 3 to 4 times)."""
    return gzip.compress(_read(path, version)[0], mtime=0)
