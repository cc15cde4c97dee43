"""`/mcp`: the MCP tools of `semsearch mcp` over streamable HTTP, behind the API's keys.

A request first passes the same guard as the other routes (a missing or unknown key is a 401 in
the API's error shape), then goes to the SDK's session manager. A tool's `index` argument obeys the
key's index scope. The manager is stateless and answers in JSON: any server process can take any
call, and no session is kept between them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from search.errors import Forbidden
from search.mcp_server import build_server
from search.service import SearchService

from .auth import Guard, Principal
from .registry import DEFAULT, IndexRegistry

PATH = "/mcp"


class McpEndpoint:
    """The ASGI endpoint at /mcp: the guard, then the SDK's transport; `lifespan()` runs its manager."""

    def __init__(self, registry: IndexRegistry, guard: Guard) -> None:
        self.registry, self.guard = registry, guard
        self.manager = StreamableHTTPSessionManager(
            app=build_server(self._service),
            stateless=True,
            json_response=True,
            # The API keys guard /mcp as they guard every route, and the app's HostGuard (origins.py) checks
            # the Host header for every route; the SDK's own check would refuse any name but localhost.
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    def route(self) -> Route:
        return Route(PATH, endpoint=self, include_in_schema=False)

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guard(Request(scope, receive))  # our errors go to the app's handlers: one error shape
        await self.manager.handle_request(scope, receive, send)

    def _service(self, index: str | None, request: Any) -> SearchService:
        """The index a tool call names, if the caller's key reaches it."""
        name = index or DEFAULT
        principal = getattr(getattr(request, "state", None), "principal", None)
        if not isinstance(principal, Principal):
            raise Forbidden(f"this caller has no access to the index {name!r}")
        if not principal.may_use(name):
            raise Forbidden(f"{principal.refusal(name)} (name one in the tool's `index` argument)")
        return self.registry.service(name)
