"""The web page: `GET /` is static/ui/index.html and `GET /ui/{name}` its scripts, styles and icons.

No key is needed: the files hold no data (the page asks the API for it, with the key the user gives).
Each answer says `no-cache` with an ETag, so a browser checks on every load and gets a 304 while a file
is unchanged; the CSP lets the page load only its own files and talk only to this server.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from .error_shapes import error_response
from .static_files import static_response

UI = Path(__file__).parent / "static" / "ui"
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; frame-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
MEDIA_TYPES = {  # the kinds of file the page may have; any other name is a 404
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # one file name: no folders, no dot files


def add_ui(app: FastAPI, folder: Path = UI) -> None:
    """`GET /` and `GET /ui/{name}`, served from `folder`, outside the OpenAPI document."""

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        return _serve(request, folder, "index.html")

    @app.get("/ui/{name}", include_in_schema=False)
    def asset(request: Request, name: str) -> Response:
        return _serve(request, folder, name)


def _serve(request: Request, folder: Path, name: str) -> Response:
    path = ui_file(folder, name)
    if path is None:
        return error_response(404, "not_found", f"the web page has no file {name!r}")
    return static_response(request, path, MEDIA_TYPES[path.suffix], HEADERS)


def ui_file(folder: Path, name: str) -> Path | None:
    """The file `name` directly in `folder`, if it is one the page may have (never a path out of it)."""
    if not _NAME.fullmatch(name) or ".." in name or Path(name).suffix not in MEDIA_TYPES:
        return None
    path = folder / name
    if not path.is_file() or path.resolve().parent != folder.resolve():  # a link pointing out is not served
        return None
    return path
