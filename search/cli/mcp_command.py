"""`semsearch mcp`: the search tools for agents, over the Model Context Protocol on stdin/stdout."""

from __future__ import annotations

from pathlib import Path

import click

from .common import base_url_option, errors, index_option, open_service, settings_for


@click.command("mcp")
@index_option
@base_url_option
@errors
def mcp_command(index_dir: Path | None, base_url: str | None) -> None:
    """Serve the index to an MCP client (Claude Desktop, an agent) over stdio.

    The tools: search, ask, list_documents, get_document and fetch. `semsearch serve`
    offers the same tools over HTTP at /mcp.

    \b
    semsearch mcp --index ~/.semsearch/notes
    """
    from search.mcp_server import run_stdio  # the MCP SDK loads only for this command

    with open_service(settings_for(index_dir).updated(openai_base_url=base_url)) as service:
        run_stdio(service)
