"""The `semsearch` command line: a thin click group over the library."""

from __future__ import annotations

import logging
from contextlib import suppress
from pathlib import Path
from typing import Any

import click

from ingest import DEFAULT_EMBEDDING_MODEL, TIER_LIMITS, Embedder, RemoteOptions, WalkOptions
from search.cli import output
from search.fusion import FUSIONS
from search.settings import DEFAULT_ASK_K, DEFAULT_K, DEFAULT_MIN_SCORE, Settings

from .common import errors, filter_option, index_option, json_option, mode_option, open_service, settings_for
from .measure import COMMANDS


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
@click.option(
    "--max-file-mb",
    type=click.FloatRange(min=0.001),
    default=WalkOptions.max_bytes / 2**20,
    show_default=True,
    help="Skip files larger than this.",
)
@click.option(
    "--chunk-tokens",
    type=click.IntRange(32, 8192),
    help="Largest passage, in model tokens [default: 256 local, 512 remote, or the index's].",
)
@click.option(
    "--chunk-overlap",
    type=click.IntRange(0, 4096),
    help="Tokens shared by consecutive passages [default: 1/8 of the chunk, or the index's].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    help="Passages per embedding batch [default: 64 local, 1024 remote].",
)
@click.option(
    "--embedding-model",
    help=f"provider/name for a new index: {DEFAULT_EMBEDDING_MODEL} or openai/NAME "
    f"[default: $SEMSEARCH_EMBEDDING_MODEL, else {DEFAULT_EMBEDDING_MODEL}].",
)
@click.option("--base-url", help="OpenAI-compatible endpoint [default: $OPENAI_BASE_URL, else OpenAI's].")
@click.option("--dimensions", type=click.IntRange(1, 65536), help="Vector size to ask for (text-embedding-3 models).")
@click.option(
    "--tier", type=click.Choice(sorted(TIER_LIMITS)), help="OpenAI usage tier: preset RPM/TPM limits to pace under."
)
@click.option("--rpm", type=click.FloatRange(min=1), help="Requests per minute to stay under.")
@click.option("--tpm", type=click.FloatRange(min=1), help="Tokens per minute to stay under.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=RemoteOptions.concurrency,
    show_default=True,
    help="Embedding requests in flight.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(0, 100),
    default=RemoteOptions.max_retries,
    show_default=True,
    help="Retries of a failed request.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=RemoteOptions.timeout,
    show_default=True,
    help="Seconds to wait for a reply.",
)
@click.option(
    "--embedding-max-tokens",
    type=click.IntRange(16, 1_000_000),
    help="Input limit of an unknown remote model [default: 512].",
)
@click.option("--dry-run", is_flag=True, help="Count files, chunks, tokens and the price; embed and write nothing.")
@click.option("--watch", is_flag=True, help="Keep running: re-ingest what is added, changed, renamed or deleted.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1),
    default=2.0,
    show_default=True,
    help="Seconds between passes with --watch.",
)
@json_option
@errors
def ingest(
    paths: tuple[Path, ...],
    index_dir: Path | None,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    max_file_mb: float,
    chunk_tokens: int | None,
    chunk_overlap: int | None,
    batch_size: int | None,
    embedding_model: str | None,
    base_url: str | None,
    dimensions: int | None,
    tier: str | None,
    rpm: float | None,
    tpm: float | None,
    concurrency: int,
    max_retries: int,
    timeout: float,
    embedding_max_tokens: int | None,
    dry_run: bool,
    watch: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Ingest files and folders into an index (again: only what changed).

    \b
    semsearch ingest docs/ --index ./my-index
    semsearch ingest ~/papers --include '*.pdf' --exclude 'drafts/**'
    semsearch ingest docs/ --embedding-model openai/text-embedding-3-small --tier 1 --dry-run
    semsearch ingest ~/notes --watch
    """
    from ingest import Folders, default_chunking, find_index, ingest, open_index

    settings = settings_for(index_dir).updated(embedding_model=embedding_model)
    remote = settings.remote(
        base_url=base_url,
        dimensions=dimensions,
        tier=tier,
        rpm=rpm,
        tpm=tpm,
        concurrency=concurrency,
        max_retries=max_retries,
        timeout=timeout,
        max_tokens=embedding_max_tokens,
    )
    embedder = _embedder_for(settings, remote)
    chunking = None
    if chunk_tokens is not None or chunk_overlap is not None:
        chunking = default_chunking(embedder, chunk_tokens, chunk_overlap)
    index, chunking = (find_index if dry_run else open_index)(settings.index_dir, embedder, chunking)
    source = Folders(paths, WalkOptions(include, exclude, int(max_file_mb * 2**20)))
    try:
        with output.progress("Ingesting", enabled=not as_json) as progress:
            summary = ingest(
                index, embedder, source, chunking=chunking, batch_size=batch_size, progress=progress, dry_run=dry_run
            )
    finally:
        embedder.close()
        if index is not None:
            index.close()
    output.print_ingest(summary, settings.index_dir, embedder.name, as_json)
    if watch and not dry_run:
        _watch(settings, paths, source.options, interval, as_json)


def _watch(settings: Settings, paths: tuple[Path, ...], options: Any, interval: float, as_json: bool) -> None:
    """Ingest again every `interval` seconds, printing a summary when something changed."""
    from search.watch import Watcher

    def report(result: Any) -> None:
        if isinstance(result, Exception):
            click.echo(f"Error: {result}", err=True)
        elif result.ingested or result.removed or result.skipped:
            output.print_ingest(result, settings.index_dir, "", as_json)

    click.echo(f"Watching {', '.join(map(str, paths))} (Ctrl-C to stop)", err=True)
    with open_service(settings.updated(chat_model="none")) as service, suppress(KeyboardInterrupt):
        Watcher(service, paths, options, interval=interval, report=report).run_forever()


def _embedder_for(settings: Settings, remote: RemoteOptions) -> Embedder:
    """A new index's embedder is the one asked for; an existing index keeps its own (asking for another is an error)."""
    from indexes import Index
    from indexes.manifest import read_manifest
    from ingest import IngestConfigError, embedder_for_index, make_embedder

    if not Index.exists(settings.index_dir):
        return make_embedder(settings.embedding_model, cache_dir=settings.cache_dir, remote=remote)
    manifest = read_manifest(settings.index_dir)
    if "embedding_model" in settings.model_fields_set and settings.embedding_model != manifest.embedding_model:
        raise IngestConfigError(
            f"the index at {settings.index_dir} was built with {manifest.embedding_model}, "
            f"not {settings.embedding_model}; "
            f"to re-index with {settings.embedding_model}, ingest into a new folder (--index NEW_DIR), "
            f"or delete {settings.index_dir} and ingest again"
        )
    return embedder_for_index(manifest.embedder, manifest.embedding_model, cache_dir=settings.cache_dir, remote=remote)


@cli.command("search")
@click.argument("query")
@index_option
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=DEFAULT_K,
    show_default=True,
    help="Number of passages [at most $SEMSEARCH_MAX_K].",
)
@mode_option
@click.option(
    "--fusion",
    type=click.Choice(FUSIONS),
    default="zscore",
    show_default=True,
    help="How hybrid mode combines the two sides.",
)
@click.option("--explain", is_flag=True, help="Show the dense and lexical ranks behind each result.")
@click.option(
    "--reranker",
    help="Rerank with a cross-encoder folder (model.onnx + tokenizer.json) or a /rerank base URL "
    "[default: $SEMSEARCH_RERANKER, else none].",
)
@filter_option
@json_option
@errors
def search_command(
    query: str,
    index_dir: Path | None,
    k: int,
    mode: str,
    fusion: str,
    explain: bool,
    reranker: str | None,
    filters: Any,
    as_json: bool,
) -> None:
    """Print the passages that best match QUERY.

    \b
    semsearch search "vector index types" -k 5
    semsearch search "error 42" --mode lexical --json | jq '.results[0].path'
    """
    with open_service(settings_for(index_dir).updated(chat_model="none", reranker=reranker), k=k) as service:
        hits = service.search(query, k, mode, fusion, filters)
    output.print_hits(query, mode, hits, as_json=as_json, explain=explain)


@cli.command()
@click.argument("question")
@index_option
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=DEFAULT_ASK_K,
    show_default=True,
    help="Passages to retrieve [at most $SEMSEARCH_MAX_K].",
)
@mode_option
@click.option(
    "--chat-model",
    help="openai/NAME of the chat model [default: $SEMSEARCH_CHAT_MODEL, "
    "else openai/gpt-4o-mini when OPENAI_API_KEY is set, else extractive].",
)
@click.option(
    "--chat-base-url",
    help="OpenAI-compatible chat endpoint [default: $SEMSEARCH_CHAT_BASE_URL, else $OPENAI_BASE_URL].",
)
@click.option(
    "--chat-context-window", type=click.IntRange(512), help="Context window of a model semsearch does not know."
)
@click.option(
    "--min-score",
    type=float,
    help=f"Abstain when no passage's cosine reaches this [default: $SEMSEARCH_MIN_SCORE, else {DEFAULT_MIN_SCORE}].",
)
@click.option("--moderate", is_flag=True, default=None, help="Screen the question with /v1/moderations first.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print the answer as it is written.")
@filter_option
@json_option
@errors
def ask(
    question: str,
    index_dir: Path | None,
    k: int,
    mode: str,
    chat_model: str | None,
    chat_base_url: str | None,
    chat_context_window: int | None,
    min_score: float | None,
    moderate: bool | None,
    stream: bool,
    filters: Any,
    as_json: bool,
) -> None:
    """Answer QUESTION from the indexed documents, citing passages as [n].

    With a chat model the answer is written from the best passages and every
    citation is checked; without one it is extractive: sentences quoted from them.

    \b
    semsearch ask "who invented the printing press?"
    SEMSEARCH_CHAT_MODEL=openai/gpt-4o-mini semsearch ask "what does the contract say about renewal?" --json
    """
    settings = settings_for(index_dir).updated(
        chat_model=chat_model,
        chat_base_url=chat_base_url,
        chat_context_window=chat_context_window,
        min_score=min_score,
        moderate=moderate,
    )
    with open_service(settings, k=k) as service:
        if as_json or not stream:
            output.print_answer(service.ask(question, k, mode, filters), as_json)
            return
        for event in service.ask_stream(question, k, mode, filters):
            if event["type"] == "delta":
                click.echo(event["text"], nl=False)
            else:
                click.echo()
                output.print_answer(event["answer"], False, body=False)


@cli.command()
@index_option
@json_option
@errors
def stats(index_dir: Path | None, as_json: bool) -> None:
    """Documents, chunks, model, index type and size on disk.

    \b
    semsearch stats --index ./my-index --json
    """
    with open_service(settings_for(index_dir)) as service:
        output.print_stats(service.stats(), as_json)


@cli.command()
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
    settings = settings_for(index_dir).updated(
        named_indexes={**settings_for(index_dir).named_indexes, **{n: Path(d).expanduser() for n, d in pairs}} or None,
        index_root=index_root,
        ingest_roots=tuple(ingest_roots) or None,
        watch_paths=tuple(watch_paths) or None,
        api_keys_file=api_keys_file,
    )
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


def _ensure_default_index(settings: Settings) -> None:
    """A fresh server gets an empty default index, so documents can be uploaded at once."""
    from indexes import Index
    from ingest import make_embedder, open_index

    if not Index.exists(settings.index_dir):
        embedder = make_embedder(settings.embedding_model, cache_dir=settings.cache_dir, remote=settings.remote())
        index, _ = open_index(settings.index_dir, embedder, None)
        index.close()
        embedder.close()


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Entry point of the `semsearch` script."""
    cli(prog_name="semsearch")
