"""The `semsearch` command line: a thin click group over the library."""

from __future__ import annotations

import click

from .ingest_command import ingest
from .maintain import migrate, optimize
from .mcp_command import mcp_command
from .measure import COMMANDS
from .query import ask, search_command, stats
from .serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="semsearch")
def cli() -> None:
    """Semantic search and question answering over a folder of documents.

    \b
    semsearch ingest ~/notes --index ~/.semsearch/notes
    semsearch search "how do I rotate the keys" --index ~/.semsearch/notes
    semsearch serve --index ~/.semsearch/notes --port 8000
    """


for _command in (ingest, search_command, ask, stats, serve, mcp_command, optimize, migrate, *COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the `semsearch` script."""
    cli(prog_name="semsearch")
