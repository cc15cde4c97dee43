"""The MCP server: the tools of `mcp_tools` on the official SDK's low-level `Server`, and its stdio transport.

`semsearch mcp` runs it over stdio; `search/http/mcp.py` mounts the same server at `/mcp`. A tool's
failure (a bad argument, a missing document, an upstream error) is a tool error the agent reads and
fixes, never a crash of the server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams, TextContent, Tool
from pydantic import ValidationError

from search.errors import ERROR_FAMILIES, InvalidQuery
from search.mcp_tools import TOOLS
from search.service import SearchService

log = logging.getLogger("semsearch.mcp")

# (the `index` argument, or None; the HTTP request behind the call, or None over stdio) -> the service to use
ServiceFor = Callable[[str | None, Any], SearchService]
INSTRUCTIONS = (
    "Semantic search over a folder of documents. Use `search` to find passages, `ask` for an answer with "
    "citations, `fetch` with a result's id for the full passage or document text, and `list_documents` / "
    "`get_document` to browse. Results name the document (path, title), page and passage id."
)


def build_server(service_for: ServiceFor, *, version: str = "0.1.0") -> Server[Any]:
    """An MCP server whose tools run on the service `service_for` picks for each call."""
    tools = [
        Tool(name=name, description=description.strip(), input_schema=arguments.model_json_schema())
        for name, (arguments, _, description) in TOOLS.items()
    ]

    async def list_tools(ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        try:
            result = await anyio.to_thread.run_sync(_call, service_for, params, ctx.request)
        except ERROR_FAMILIES as exc:
            return _error(str(exc))
        except Exception:
            log.exception("the MCP tool %s failed unexpectedly", params.name)
            return _error("the server failed unexpectedly (its log has the details)")
        text = json.dumps(result, ensure_ascii=False)
        return CallToolResult(content=[TextContent(text=text)], structured_content=result)

    return Server(
        "semsearch",
        version=version,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def run_stdio(service: SearchService) -> None:
    """Serve the tools over stdin/stdout until the client closes them (the index's name is `default`)."""
    server = build_server(lambda index, request: _only(service, index))

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)


def _call(service_for: ServiceFor, params: CallToolRequestParams, request: Any) -> dict[str, Any]:
    """Validate the arguments, pick the service, run the tool (in a worker thread: tools block)."""
    found = TOOLS.get(params.name)
    if found is None:
        raise InvalidQuery(f"no tool named {params.name!r}; the tools are {', '.join(TOOLS)}")
    model, tool, _ = found
    try:
        args = model.model_validate(params.arguments or {})
    except ValidationError as exc:
        raise InvalidQuery(f"{params.name}: {_problems(exc)}") from exc
    return tool(service_for(args.index, request), args)


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors as `field: what is wrong`, joined (the agent fixes its call from this)."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        message = "not an argument of this tool" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _only(service: SearchService, index: str | None) -> SearchService:
    if index not in (None, "default"):
        raise InvalidQuery(f"this server serves one index (`default`), not {index!r}: leave `index` out")
    return service


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=message)], is_error=True)
