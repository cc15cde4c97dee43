"""`/openapi.json`, `/docs` (Swagger UI) and `/redoc`, with their scripts served from the package, not a CDN.

The files under static/docs/ are the npm packages' own (static/docs/SOURCES.md says which and how to update them);
their folder names carry the version, so a URL never changes content and browsers may cache it for a year.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .static_files import static_response

SWAGGER_UI = "swagger-ui-5.35.0"
REDOC = "redoc-2.5.4"
ASSETS_URL = "/docs-assets"
STATIC = Path(__file__).parent / "static" / "docs"
ASSETS = {  # every file /docs-assets serves, and its content type
    f"{SWAGGER_UI}/swagger-ui-bundle.js": "text/javascript",
    f"{SWAGGER_UI}/swagger-ui.css": "text/css",
    f"{SWAGGER_UI}/favicon-32x32.png": "image/png",
    f"{REDOC}/redoc.standalone.js": "text/javascript",
}
_CACHE = "max-age=31536000, immutable"  # not `public`: behind API keys, a shared cache should not keep them


def add_docs(app: FastAPI, guards: list[Any]) -> None:
    """The OpenAPI document, its two readers and their assets, behind `guards` (none: public)."""
    title = f"{app.title} API"
    favicon = f"{ASSETS_URL}/{SWAGGER_UI}/favicon-32x32.png"

    @app.get("/openapi.json", include_in_schema=False, dependencies=guards)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guards)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{ASSETS_URL}/{SWAGGER_UI}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/{SWAGGER_UI}/swagger-ui.css",
            swagger_favicon_url=favicon,
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        )

    @app.get("/redoc", include_in_schema=False, dependencies=guards)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{ASSETS_URL}/{REDOC}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,
        )

    @app.get(ASSETS_URL + "/{name:path}", include_in_schema=False, dependencies=guards)
    def asset(name: str, request: Request) -> Response:
        if name not in ASSETS:  # only the listed files: no path ever reaches the file system
            raise HTTPException(404, f"no docs asset {name!r}")
        return static_response(request, STATIC / name, ASSETS[name], {"Cache-Control": _CACHE})
