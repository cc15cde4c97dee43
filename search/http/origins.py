"""Guards against other web sites' pages, which a user's browser lets talk to this server.

The host guard: a server on a loopback address answers only to the names given (`--allowed-host`,
SEMSEARCH_ALLOWED_HOSTS) and to localhost, 127.0.0.1 and ::1. A page of another site can rebind its own
name to 127.0.0.1 (DNS rebinding) and then read from the server as if it were the same site; its requests
still carry that site's name in the Host header, which is refused.

The cross-site write guard: another web site's page may not change data here through the user's browser.

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
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
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


class HostGuard:
    """ASGI middleware: a 403 for a request whose Host header names none of `allowed` (nor localhost)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = frozenset((*allowed, *LOOPBACK_NAMES))
        self.any = not allowed or "*" in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers", ())).get(b"host", b"").decode("latin-1")
        if host_name(host) in self.allowed:
            await self.app(scope, receive, send)
            return
        named = f"the name {host!r}" if host else "a request without a Host header"
        message = (
            f"this server does not answer to {named} (it answers to {', '.join(sorted(self.allowed))}): "
            "a guard against other sites' pages reaching it by DNS rebinding; to use that name, start the server "
            "with --allowed-host NAME or add it to SEMSEARCH_ALLOWED_HOSTS (comma-separated)"
        )
        await error_for(scope.get("path", ""), 403, "host_not_allowed", message)(scope, receive, send)


def host_name(host: str) -> str:
    """The name in a Host header, lower case, without its port, an IPv6 address's brackets or a final dot
    (`localhost.` is localhost: the dot only says the name is complete)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return (host.rpartition(":")[0] if host.count(":") == 1 else host).rstrip(".")
