"""The `semsearch` command line: a thin click group over the library."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from indexes import DimensionMismatch, IndexNotFound, IndexStoreError
from ingest import IngestConfigError, IngestError

from . import output
from .errors import DatasetError, InvalidQuery, SearchError
from .retrieve import MAX_K, MODES
from .settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# Errors a user fixes by changing the command: exit code 2, like a usage error.
_USAGE_ERRORS = (InvalidQuery, IndexNotFound, IngestConfigError, DatasetError, DimensionMismatch)


def _errors(command: F) -> F:
    """Turn our error families into one line on stderr and an exit code (2: fix the command)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _USAGE_ERRORS as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except (SearchError, IngestError, IndexStoreError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _settings(index: Path | None) -> Settings:
    return Settings.from_env().with_index(index)


index_option = click.option(
    "--index", "index_dir", type=click.Path(path_type=Path, file_okay=False),
    help="Index folder (default: $SEMSEARCH_INDEX, else a per-user data folder).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
mode_option = click.option(
    "--mode", type=click.Choice(MODES), default="hybrid", show_default=True,
    help="dense (FAISS), lexical (FTS5 BM25) or hybrid (both, rank-fused).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="semsearch")
def cli() -> None:
    """Semantic search and question answering over a folder of documents.

    \b
    semsearch ingest ~/notes --index ~/.semsearch/notes
    semsearch search "how do I rotate the keys" --index ~/.semsearch/notes
    semsearch serve --index ~/.semsearch/notes --port 8000
    """


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@click.option("--include", multiple=True, metavar="GLOB", help="Only files matching GLOB (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files matching GLOB (repeatable).")
@click.option("--max-file-mb", type=click.FloatRange(min=0.001), default=50.0, show_default=True, help="Skip files larger than this.")
@click.option("--chunk-tokens", type=click.IntRange(32, 8192), help="Largest passage, in model tokens [default: 256, or the index's].")
@click.option("--chunk-overlap", type=click.IntRange(0, 4096), help="Tokens shared by consecutive passages [default: 32, or the index's].")
@click.option("--batch-size", type=click.IntRange(1, 2048), default=64, show_default=True, help="Passages per embedding batch.")
@click.option("--embedding-model", envvar="SEMSEARCH_EMBEDDING_MODEL", help="provider/name of the embedding model for a new index.")
@json_option
@_errors
def ingest(paths: tuple[Path, ...], index_dir: Path | None, include: tuple[str, ...], exclude: tuple[str, ...],
           max_file_mb: float, chunk_tokens: int | None, chunk_overlap: int | None, batch_size: int,
           embedding_model: str | None, as_json: bool) -> None:
    """Ingest files and folders into an index (again: only what changed).

    \b
    semsearch ingest docs/ --index ./my-index
    semsearch ingest ~/papers --include '*.pdf' --exclude 'drafts/**'
    """
    from ingest import ChunkingConfig, WalkOptions, ingest_paths, make_embedder, open_index

    settings = _settings(index_dir)
    chunking = None
    if chunk_tokens is not None or chunk_overlap is not None:
        chunking = ChunkingConfig(chunk_tokens or 256, 32 if chunk_overlap is None else chunk_overlap)
    model = embedding_model or settings.embedding_model
    embedder = make_embedder(_model_of(settings.index_dir) or model, cache_dir=settings.cache_dir)
    index, chunking = open_index(settings.index_dir, embedder, chunking)
    options = WalkOptions(include, exclude, int(max_file_mb * 2**20))
    with output.progress("Ingesting", enabled=not as_json) as progress:
        summary = ingest_paths(index, embedder, paths, chunking, options, batch_size=batch_size, progress=progress)
    output.print_ingest(summary, settings.index_dir, as_json)


def _model_of(folder: Path) -> str | None:
    """The embedding model an existing index was built with (None for a new index)."""
    from indexes import Index

    return Index.open(folder).manifest.embedding_model if Index.exists(folder) else None


@cli.command("search")
@click.argument("query")
@index_option
@click.option("-k", "k", type=click.IntRange(1, MAX_K), default=10, show_default=True, help="Number of passages.")
@mode_option
@click.option("--explain", is_flag=True, help="Show the dense and lexical ranks behind each result.")
@json_option
@_errors
def search_command(query: str, index_dir: Path | None, k: int, mode: str, explain: bool, as_json: bool) -> None:
    """Print the passages that best match QUERY.

    \b
    semsearch search "vector index types" -k 5
    semsearch search "error 42" --mode lexical --json | jq '.results[0].path'
    """
    with _service(index_dir) as service:
        hits = service.search(query, k, mode)
    output.print_hits(query, mode, hits, as_json=as_json, explain=explain)


@cli.command()
@click.argument("question")
@index_option
@click.option("-k", "k", type=click.IntRange(1, MAX_K), default=5, show_default=True, help="Passages to draw from.")
@mode_option
@json_option
@_errors
def ask(question: str, index_dir: Path | None, k: int, mode: str, as_json: bool) -> None:
    """Answer QUESTION from the indexed documents, citing passages as [n].

    With no chat model configured the answer is extractive: sentences quoted
    from the best passages.

    \b
    semsearch ask "who invented the printing press?"
    """
    with _service(index_dir) as service:
        answer = service.ask(question, k, mode)
    output.print_answer(answer, as_json)


@cli.command()
@index_option
@json_option
@_errors
def stats(index_dir: Path | None, as_json: bool) -> None:
    """Documents, chunks, model, index type and size on disk.

    \b
    semsearch stats --index ./my-index --json
    """
    with _service(index_dir) as service:
        output.print_stats(service.stats(), as_json)


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@_errors
def serve(index_dir: Path | None, host: str, port: int) -> None:
    """Serve the index over HTTP (POST /search, POST /ask, GET /stats, docs at /docs).

    \b
    semsearch serve --index ./my-index --port 8000
    curl -s localhost:8000/search -H 'content-type: application/json' -d '{"query": "tcp"}'
    """
    import uvicorn

    from .app import create_app

    settings = _settings(index_dir)
    from indexes import Index

    Index.open(settings.index_dir)  # a missing index is an error now, not at the first request
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


@cli.command("eval")
@click.argument("dataset_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@index_option
@mode_option
@click.option("--split", default="test", show_default=True, help="Which qrels/SPLIT.tsv to use.")
@json_option
@_errors
def eval_command(dataset_dir: Path, index_dir: Path | None, mode: str, split: str, as_json: bool) -> None:
    """Measure retrieval on a BEIR-layout collection: nDCG@10, recall@100, MRR@10.

    The corpus is ingested first (into --index, or a cache folder per dataset;
    an index already holding it is reused).

    \b
    semsearch eval ../shared/datasets/scifact --mode hybrid --json
    """
    from .evaluation_run import run_evaluation

    settings = Settings.from_env()
    report = run_evaluation(dataset_dir, settings, index_dir, mode, split, show_progress=not as_json)
    output.print_eval(report, as_json)


@cli.command()
@click.argument("dataset_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--documents", type=click.IntRange(1), default=1000, show_default=True, help="Documents of the corpus to ingest.")
@click.option("--queries", type=click.IntRange(1), default=300, show_default=True, help="Queries to time.")
@click.option("--mode", "modes", type=click.Choice(MODES), multiple=True, help="Modes to time (repeatable) [default: all].")
@click.option("--http/--no-http", default=True, show_default=True, help="Also time searches over HTTP (uvicorn on 127.0.0.1).")
@json_option
@_errors
def bench(dataset_dir: Path, documents: int, queries: int, modes: tuple[str, ...], http: bool, as_json: bool) -> None:
    """Measure ingest throughput against the bare model, and search latency.

    Ingests the first documents of a BEIR-layout collection into a temporary
    index, embeds the same passages with the model alone, then times the
    collection's queries in process and over HTTP (p50/p95 in milliseconds).

    \b
    semsearch bench ../shared/datasets/scifact --documents 1000 --json
    """
    from .bench import run_benchmark

    report = run_benchmark(dataset_dir, Settings.from_env(), documents=documents, queries=queries, modes=modes or MODES, http=http)
    output.print_eval(report, as_json)


@contextmanager
def _service(index_dir: Path | None) -> Iterator[Any]:
    from .service import SearchService

    settings = _settings(index_dir)
    service = SearchService.open(settings.index_dir, cache_dir=settings.cache_dir)
    try:
        yield service
    finally:
        service.close()


def main() -> None:
    """Entry point of the `semsearch` script."""
    cli(prog_name="semsearch")
