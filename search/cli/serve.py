"""`semsearch serve`: the HTTP API over one or more indexes."""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

import click

from search.settings import Settings

from .common import base_url_option, errors, index_option, settings_for


@click.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--named-index", "named", multiple=True, metavar="NAME=DIR", help="Also serve DIR as /indexes/NAME (repeatable)."
)
@click.option(
    "--index-root",
    type=click.Path(path_type=Path, file_okay=False),
    help="Serve every index under DIR; POST /indexes creates new ones there.",
)
@click.option(
    "--ingest-root",
    "ingest_roots",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A folder POST /ingest may read (repeatable).",
)
@click.option(
    "--watch",
    "watch_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Keep the default index in sync with this folder (repeatable).",
)
@click.option(
    "--api-keys-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="API keys, one per line (KEY or KEY:ro).",
)
@base_url_option
@click.option(
    "--search-workers",
    type=click.IntRange(0, 64),
    help="Processes to run searches in, so they use every core (0: in the server process) "
    "[default: $SEMSEARCH_SEARCH_WORKERS, else one per core up to 4 when there are several].",
)
@click.option(
    "--public-docs",
    is_flag=True,
    default=None,
    help="Serve /docs, /redoc and /openapi.json without an API key (they need one when keys are set).",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Let pages of this web origin (https://host[:port]) send writes here; others get a 403 (repeatable) "
    "[default: $SEMSEARCH_ALLOWED_ORIGINS].",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A name this server answers to besides localhost (the Host header; repeatable; '*': any). On a loopback "
    "--host it answers to localhost alone by default, against DNS rebinding [default: $SEMSEARCH_ALLOWED_HOSTS].",
)
@errors
def serve(
    index_dir: Path | None,
    host: str,
    port: int,
    named: tuple[str, ...],
    index_root: Path | None,
    ingest_roots: tuple[Path, ...],
    watch_paths: tuple[Path, ...],
    api_keys_file: Path | None,
    base_url: str | None,
    public_docs: bool | None,
    search_workers: int | None,
    allowed_origins: tuple[str, ...],
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve the index over HTTP (POST /search, POST /ask, GET /stats, docs at /docs).

    \b
    semsearch serve --index ./my-index --port 8000
    curl -s localhost:8000/search -H 'content-type: application/json' -d '{"query": "tcp"}'
    """
    import uvicorn

    from search.http.app import create_app

    pairs = [item.split("=", 1) for item in named]
    if any(len(p) != 2 or not p[0] for p in pairs):
        raise click.UsageError("--named-index takes NAME=DIR")
    base = settings_for(index_dir)  # the environment, read once; the flags add to its lists
    settings = base.updated(
        named_indexes={**base.named_indexes, **{n: Path(d).expanduser() for n, d in pairs}} or None,
        index_root=index_root,
        ingest_roots=tuple(ingest_roots) or None,
        watch_paths=tuple(watch_paths) or None,
        api_keys_file=api_keys_file,
        public_docs=public_docs,
        openai_base_url=base_url,
        search_workers=search_workers,
        allowed_origins=(*base.allowed_origins, *allowed_origins) or None,
        allowed_hosts=_names(host, (*base.allowed_hosts, *allowed_hosts)),
    )
    if "search_workers" not in settings.model_fields_set:
        cores = os.cpu_count() or 1
        settings = settings.updated(search_workers=min(cores, 4) if cores > 1 else 0)
    _ensure_default_index(settings)
    app = create_app(settings)
    # One structured JSON line per request from our own middleware; uvicorn's access line would repeat it
    # with the query string.
    access = logging.getLogger("semsearch.access")
    access.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def _names(host: str, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    """The Host names to answer to: those given; on a loopback address, localhost alone when none are."""
    if allowed:
        return allowed
    try:
        loopback = host.lower().rstrip(".") == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    return ("localhost",) if loopback else None


def _ensure_default_index(settings: Settings) -> None:
    """A fresh server gets an empty default index, so documents can be uploaded at once."""
    from indexes import store_exists
    from ingest import make_embedder, open_index

    if not store_exists(settings.index_dir):
        embedder = make_embedder(settings.embedding_model, cache_dir=settings.cache_dir, remote=settings.remote())
        index, _ = open_index(settings.index_dir, embedder, None)
        index.close()
        embedder.close()
