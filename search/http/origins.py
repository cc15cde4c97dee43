"""The cross-site write guard: another web site's page may not change data here through the user's browser.

A browser sends a form or multipart POST to any server without asking first (a "simple" CORS request), and
on a server without API keys nothing else would stop it. So a POST, PUT, PATCH or DELETE whose `Origin` is
neither this server's own (the scheme and the Host header the request came with) nor one of the allowed
origins (`--allowed-origin`, SEMSEARCH_ALLOWED_ORIGINS) is a 403. Requests without an Origin (curl, the SDKs)
and reads pass untouched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .error_shapes import error_for

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PORTS = {"http": 80, "https": 443}


class CrossSiteGuard:
    """ASGI middleware: a 403 for writes sent by a page of another origin than this server or `allowed`."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = {origin for origin in map(normalized, allowed) if origin is not None}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        origin = headers.get(b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        sender = origin.decode("latin-1")
        own = normalized(f"{scope.get('scheme', 'http')}://{headers.get(b'host', b'').decode('latin-1')}")
        theirs = normalized(sender)
        if theirs is not None and (theirs == own or theirs in self.allowed):
            await self.app(scope, receive, send)
            return
        here = own or "no Host header"
        message = (
            f"refused a {scope['method']} sent by a page of another site ({sender}) to this server ({here}): "
            f"to let that site's pages change data here, start the server with --allowed-origin {sender} "
            "or add it to SEMSEARCH_ALLOWED_ORIGINS (comma-separated)"
        )
        await error_for(scope.get("path", ""), 403, "cross_site_forbidden", message)(scope, receive, send)


def normalized(origin: str) -> str | None:
    """`scheme://host:port` in lower case with the port spelled out; None for what is no origin (`null`)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port or _PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in _PORTS or not parts.hostname or port is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"
