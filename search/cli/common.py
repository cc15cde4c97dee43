"""What the `semsearch` commands share: options, settings, error handling, the service."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from indexes import STORES, DimensionMismatch, IndexNotFound, IndexStoreError, store_exists
from indexes.manifest import read_manifest
from ingest import IngestConfigError
from search.errors import ERROR_FAMILIES, ConfigError, DatasetError, InvalidQuery
from search.fusion import DEFAULT_FUSION, FUSIONS
from search.retrieve import DEFAULT_MODE, MODES
from search.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# Errors a user fixes by changing the command: exit code 2, like a usage error.
_USAGE_ERRORS = (InvalidQuery, IndexNotFound, IngestConfigError, DatasetError, DimensionMismatch, ConfigError)


def errors(command: F) -> F:
    """Turn our error families into one line on stderr and an exit code (2: fix the command)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _USAGE_ERRORS as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except IndexStoreError as exc:  # a store down, a filter too broad, no BM25: may quote a server's lines
            click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
            sys.exit(1)
        except ERROR_FAMILIES as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def settings_for(index: Path | None) -> Settings:
    """The environment's settings with the command's `--index`, `--store` and `--milvus-uri`."""
    context = click.get_current_context(silent=True)
    given = context.meta if context is not None else {}
    store, uri = given.get(_STORE), given.get(_MILVUS_URI)
    settings = Settings.from_env().with_index(index).updated(store=store, milvus_uri=uri)
    if store is not None and store_exists(settings.index_dir):
        kept = read_manifest(settings.index_dir).store
        if kept != store:
            raise click.UsageError(
                f"the index at {settings.index_dir} is in the {kept} store, not {store}: leave out --store, or "
                f"copy it with `semsearch migrate --index {settings.index_dir} --to {store}`"
            )
    return settings


_STORE, _MILVUS_URI = "semsearch.store", "semsearch.milvus_uri"


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback keeping an option's value for `settings_for` (the commands need no parameter for it)."""

    def keep(context: click.Context, parameter: click.Parameter, value: Any) -> Any:
        if value is not None:
            context.meta[key] = value
        return value

    return keep


_index_options = (
    click.option(
        "--index",
        "index_dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Index folder (default: $SEMSEARCH_INDEX, else a per-user data folder).",
    ),
    click.option(
        "--store",
        type=click.Choice(STORES),
        expose_value=False,
        callback=_remember(_STORE),
        help="Where a new index keeps its passages and vectors: local (FAISS + SQLite in the index folder) or "
        "milvus [default: $SEMSEARCH_STORE, else local]. An existing index stays in its store.",
    ),
    click.option(
        "--milvus-uri",
        metavar="URI",
        expose_value=False,
        callback=_remember(_MILVUS_URI),
        help="Milvus for a Milvus index: a Milvus Lite file (*.db) or a server URL (http://host:19530) "
        "[default: $SEMSEARCH_MILVUS_URI, else the index's, else INDEX/milvus.db]. "
        "The token comes from $SEMSEARCH_MILVUS_TOKEN.",
    ),
)


def index_option(command: F) -> F:
    """`--index`, with `--store` and `--milvus-uri` beside it."""
    for option in reversed(_index_options):
        command = option(command)
    return command


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
mode_option = click.option(
    "--mode",
    type=click.Choice(MODES),
    default=DEFAULT_MODE,
    show_default=True,
    help="dense (FAISS), lexical (BM25) or hybrid (both, fused).",
)

base_url_option = click.option(
    "--base-url",
    help="OpenAI-compatible embeddings endpoint, when the index's server moved "
    "[default: $OPENAI_BASE_URL, else the one the index records].",
)

fusion_option = click.option(
    "--fusion",
    type=click.Choice(FUSIONS),
    default=DEFAULT_FUSION,
    show_default=True,
    help="How hybrid mode combines the two sides.",
)


def _parse_filter(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if not value:
        return None
    from search.filters import parse_filters

    try:
        return parse_filters(json.loads(value))
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc.msg})") from exc
    except InvalidQuery as exc:
        raise click.BadParameter(str(exc)) from exc


filter_option = click.option(
    "--filter",
    "filters",
    metavar="JSON",
    callback=_parse_filter,
    help="Only passages of documents matching an OpenAI-style filter, "
    'e.g. \'{"key": "type", "type": "eq", "value": "pdf"}\'.',
)


@contextmanager
def open_service(settings: Settings, *, k: int | None = None) -> Iterator[Any]:
    """The search service for these settings; a `-k` over `SEMSEARCH_MAX_K` is a usage error (exit 2)."""
    from search.service import SearchService

    if k is not None and k > settings.max_k:
        raise click.BadParameter(
            f"{k} is more than the limit of {settings.max_k} ($SEMSEARCH_MAX_K)", param_hint="'-k'"
        )
    service = SearchService.from_settings(settings)
    try:
        yield service
    finally:
        service.close()
