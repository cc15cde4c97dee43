"""One error shape per API: `{"error": {"type", "message"}}`, and OpenAI's own under `/v1/`.

Every way a request can fail ends here, so no client ever sees another shape:

    our error families        by class, the most specific entry of `STATUS` winning (with `RETRY_AFTER`'s header)
    RequestValidationError    422 naming each field (FastAPI's request checks)
    Starlette's HTTPException 400 (a body that does not parse), 404 (no route), 405 (wrong method)
    anything else             `CatchAll`: a logged 500 that keeps the connection open

Under `/v1/` a 422 is a 400, as OpenAI answers, so OpenAI's clients raise their typed errors by status:
400 BadRequestError (`param` names the field), 401 AuthenticationError, 403 PermissionDeniedError,
404 NotFoundError, 409 ConflictError, 413, 429 RateLimitError (with retry-after), 5xx InternalServerError.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexes import DimensionMismatch, IndexBusy, IndexExists, IndexNotFound, IndexStoreError
from indexes.errors import FilterTooBroad, LexicalUnavailable, StoreUnavailable
from ingest import IngestError, UpstreamError, UpstreamUnavailable
from search.errors import AnswerRefused, ConfigError, InvalidQuery, RequestRejected, SearchError

OPENAI_PREFIX = "/v1/"  # routes that speak OpenAI's protocol answer errors in OpenAI's shape
log = logging.getLogger("semsearch.errors")

STATUS: list[tuple[type[Exception], int, str]] = [
    # Looked up along each error's class hierarchy, so the most specific entry wins.
    (InvalidQuery, 422, "invalid_query"),
    (IndexNotFound, 404, "not_found"),
    (IndexExists, 409, "conflict"),
    (DimensionMismatch, 409, "model_mismatch"),
    (IndexBusy, 409, "index_busy"),
    (StoreUnavailable, 503, "store_unavailable"),
    (FilterTooBroad, 422, "filter_too_broad"),
    (LexicalUnavailable, 422, "lexical_unavailable"),
    (AnswerRefused, 400, "question_refused"),
    (UpstreamError, 502, "upstream_error"),
    (UpstreamUnavailable, 503, "upstream_unavailable"),
    (ConfigError, 500, "configuration_error"),
    (SearchError, 500, "internal_error"),
    (IndexStoreError, 500, "internal_error"),
    (IngestError, 500, "internal_error"),
]
# Seconds a client should wait before trying again, sent as `retry-after` with these errors.
RETRY_AFTER: dict[type[Exception], int] = {StoreUnavailable: 5}
_HTTP_KINDS = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


def error_response(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The API's one error shape: `{"error": {"type", "message", ...}}`."""
    return JSONResponse(
        {"error": {"type": kind, "message": message, **extra}}, status_code=status, headers=dict(headers or {})
    )


def openai_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape, which OpenAI clients know how to report."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


class BadParam(InvalidQuery):
    """A request field with a value the route cannot use: a 422 (a 400 under `/v1/`) naming it as `param`."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def error_for(
    path: str,
    status: int,
    kind: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    details: Sequence[dict[str, Any]] | None = None,
    param: str | None = None,
) -> JSONResponse:
    """The error shape the route at `path` speaks: OpenAI's under `/v1/` (a 422 there is a 400), ours elsewhere."""
    if path.startswith(OPENAI_PREFIX):
        param = _param(details[0]["loc"]) if details else param
        openai_kind = "server_error" if status >= 500 else "invalid_request_error"
        status = 400 if status == 422 else status  # OpenAI's clients raise BadRequestError for a 400
        return openai_error(status, message, kind=openai_kind, param=param, code=kind, headers=headers)
    extra = {"details": list(details)} if details else {}
    return error_response(status, kind, message, headers, **extra)


def install_error_handlers(app: FastAPI, families: Sequence[tuple[type[Exception], int, str]] = ()) -> None:
    """One handler per error family (`STATUS`, then `families`), plus FastAPI's and Starlette's own errors."""
    for family, status, kind in [*STATUS, *families]:

        async def handler(request: Request, exc: Exception, status: int = status, kind: str = kind) -> JSONResponse:
            wait = next((str(s) for family, s in RETRY_AFTER.items() if isinstance(exc, family)), None)
            headers = {"retry-after": wait} if wait else None
            return error_for(request.url.path, status, kind, str(exc), headers, param=getattr(exc, "param", None))

        app.add_exception_handler(family, handler)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestRejected, handle_rejected)


async def handle_rejected(request: Request, exc: Exception) -> JSONResponse:
    """Exception handler for RequestRejected and its subclasses (401, 403, 413, 429)."""
    assert isinstance(exc, RequestRejected)
    return error_for(request.url.path, exc.status_code, exc.kind, str(exc), exc.headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:  # said in words, not as a field named by the character where parsing stopped
        reason = (broken.get("ctx") or {}).get("error", "JSON decode error")
        message = f"the request body is not valid JSON ({reason} at character {broken['loc'][-1]}): send valid JSON"
        return error_for(request.url.path, 422, "invalid_json", message)
    problems = [f"{_where(e['loc'])}: {_message(e)}" for e in errors]
    details = [{"loc": [p for p in e["loc"] if isinstance(p, str | int)], "msg": _message(e)} for e in errors]
    return error_for(request.url.path, 422, "invalid_request", "; ".join(problems), details=details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message, cause = str(exc.detail), exc.__cause__
    if isinstance(cause, RecursionError):
        message = "the JSON body is nested too deeply to read: flatten it"
    elif cause is not None:
        message = f"the request body could not be read ({type(cause).__name__}: {cause}): send valid JSON in UTF-8"
    elif "multipart" in message.lower():
        message += " Send the files as multipart/form-data parts named `files`."
    elif exc.status_code == 404:
        message = f"no route {request.url.path}: see /docs for the routes this server has"
    elif exc.status_code == 405:
        allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow")
        message = f"{request.method} is not allowed on {request.url.path}" + (f"; use {allowed}" if allowed else "")
    kind = _HTTP_KINDS.get(exc.status_code, "http_error")
    return error_for(request.url.path, exc.status_code, kind, message, exc.headers)


def _where(loc: Sequence[Any]) -> str:
    """`body.filters.type` -> `filters.type`: the first part says where (body, query, path), the rest which field."""
    return ".".join(str(p) for p in loc[1:]) or str(loc[0] if loc else "body")


def _message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "not a field of this request: remove it (see /docs for the fields)"
    return str(error["msg"]).removeprefix("Value error, ")


def _param(loc: Sequence[Any]) -> str | None:
    return ".".join(str(p) for p in loc[1:]) or None


class CatchAll:
    """ASGI middleware: an unexpected exception becomes a logged 500 in the error shape.

    Starlette's own last resort answers in plain text and re-raises, which makes uvicorn drop the
    keep-alive connection without a word; this answers properly and keeps the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception:
            if started:
                raise  # half an answer is out: only closing the connection can tell the client
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            message = "the server failed unexpectedly (its log has the details); the request may be retried"
            await error_for(scope.get("path", ""), 500, "internal_error", message)(scope, receive, send)
