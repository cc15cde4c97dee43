"""`semsearch ingest`: files and folders into an index, once or kept in sync (`--watch`)."""

from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ingest import DEFAULT_EMBEDDING_MODEL, TIER_LIMITS, Embedder, IngestConfigError, RemoteOptions, WalkOptions
from ingest.batch import BatchOptions
from ingest.walk import SUPPORTED_EXTENSIONS, path_key
from search.settings import Settings

if TYPE_CHECKING:
    from ingest.openai_embedder import OpenAIEmbedder

from . import output
from .common import errors, index_option, json_option, open_service, settings_for


@click.command()
# A path that is not there is a usage error (exit 2) caught before any index is created.
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
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
@click.option(
    "--vector-storage",
    type=click.Choice(["f32", "f16", "sq8"]),
    help="How vectors are kept: f32 (exact), f16 (half the memory) or sq8 (a quarter) [default: f32; "
    "for an existing index, from now on].",
)
@click.option("--dry-run", is_flag=True, help="Count files, chunks, tokens and the price; embed and write nothing.")
@click.option("--watch", is_flag=True, help="Keep running: re-ingest what is added, changed, renamed or deleted.")
@click.option(
    "--batch",
    is_flag=True,
    help="Embed through the Batch API at half the price (OpenAI-compatible models; resumes after a restart).",
)
@click.option(
    "--batch-wait/--no-batch-wait",
    default=True,
    show_default=True,
    help="Wait for the batches, or submit them and exit (run again to collect them).",
)
@click.option(
    "--batch-poll-interval",
    type=click.FloatRange(min=0.01),
    default=BatchOptions.poll_interval,
    show_default=True,
    help="Seconds between polls of the batches.",
)
@click.option(
    "--batch-timeout",
    type=click.FloatRange(min=0),
    help="Stop waiting after this many seconds: cancel the batches and embed what they left synchronously.",
)
@click.option(
    "--batch-inputs",
    type=click.IntRange(1, BatchOptions.max_inputs),
    default=BatchOptions.max_inputs,
    show_default=True,
    help="Passages per batch.",
)
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
    vector_storage: str | None,
    dry_run: bool,
    watch: bool,
    batch: bool,
    batch_wait: bool,
    batch_poll_interval: float,
    batch_timeout: float | None,
    batch_inputs: int,
    interval: float,
    as_json: bool,
) -> None:
    """Ingest files and folders into an index (again: only what changed).

    \b
    semsearch ingest docs/ --index ./my-index
    semsearch ingest ~/papers --include '*.pdf' --exclude 'drafts/**'
    semsearch ingest docs/ --embedding-model openai/text-embedding-3-small --tier 1 --dry-run
    semsearch ingest ~/notes --watch
    semsearch ingest ~/corpus --embedding-model openai/text-embedding-3-small --batch
    """
    from ingest import Folders, default_chunking, find_index, ingest, open_index

    settings = settings_for(index_dir).updated(embedding_model=embedding_model, openai_base_url=base_url)
    remote = settings.remote(  # the base URL comes from the settings, --base-url included
        dimensions=dimensions,
        tier=tier,
        rpm=rpm,
        tpm=tpm,
        concurrency=concurrency,
        max_retries=max_retries,
        timeout=timeout,
        max_tokens=embedding_max_tokens,
    )
    if batch and watch:
        raise click.UsageError("--batch and --watch do not go together: ingest with --batch once, then --watch")
    embedder = _embedder_for(settings, remote)
    batching = BatchOptions(batch_wait, batch_poll_interval, batch_timeout, batch_inputs) if batch else None
    batcher = _check_batchable(embedder) if batch else None  # refused before any index folder is made
    if batch and _store_of(settings) == "milvus":
        raise click.UsageError("--batch is not supported on a Milvus index yet: ingest without --batch")
    chunking = None
    if chunk_tokens is not None or chunk_overlap is not None:
        chunking = default_chunking(embedder, chunk_tokens, chunk_overlap)
    if dry_run:
        index, chunking = find_index(settings.index_dir, embedder, chunking, milvus=settings.milvus())
    else:
        index, chunking = open_index(
            settings.index_dir, embedder, chunking, vector_storage, store=_store_of(settings), milvus=settings.milvus()
        )
    source = Folders(paths, WalkOptions(include, exclude, int(max_file_mb * 2**20)))
    try:
        with output.progress("Ingesting", enabled=not as_json) as progress:
            if batching is not None and batcher is not None:
                summary = _ingest_batch(
                    index, batcher, source, remote, batching, chunking, batch_size, dry_run, as_json
                )
            else:
                summary = ingest(
                    index,
                    embedder,
                    source,
                    chunking=chunking,
                    batch_size=batch_size,
                    progress=progress,
                    dry_run=dry_run,
                )
    finally:
        embedder.close()
        if index is not None:
            index.close()
    output.print_ingest(summary, settings.index_dir, embedder.name, as_json)
    if summary.seen == 0 and not as_json and not summary.batch.get("pending"):
        looked_for = " ".join(sorted(SUPPORTED_EXTENSIONS))
        click.echo(f"No documents found in {', '.join(map(path_key, paths))} (looked for {looked_for}).")
    if watch and not dry_run:
        _watch(settings, paths, source.options, interval, as_json)


def _check_batchable(embedder: Embedder) -> OpenAIEmbedder:
    """The embedder, if it is one that goes through the Batch API (an OpenAI-compatible model)."""
    from ingest.openai_embedder import OpenAIEmbedder

    if not isinstance(embedder, OpenAIEmbedder):
        what = "the local model" if embedder.name.startswith("local/") else embedder.name
        raise IngestConfigError(
            f"{what} needs no batch: it embeds in process, for free; --batch is for OpenAI-compatible "
            "models (--embedding-model openai/NAME)"
        )
    return embedder


def _ingest_batch(
    index: Any,
    embedder: OpenAIEmbedder,
    source: Any,
    remote: RemoteOptions,
    options: BatchOptions,
    chunking: Any,
    batch_size: int | None,
    dry_run: bool,
    as_json: bool,
) -> Any:
    """`--batch`: through the Batch API (`ingest/batch.py`); with --dry-run, what it would submit and cost."""
    from ingest.batch import estimate_batches, ingest_in_batches
    from ingest.batch_api import BatchClient

    if dry_run:
        return estimate_batches(index, embedder, source, chunking=chunking, max_inputs=options.max_inputs)
    bars = sys.stderr.isatty() and not as_json
    api = BatchClient.connect(
        embedder.client.base_url, remote.api_key, timeout=remote.timeout, max_retries=remote.max_retries, backoff=0.5
    )
    try:
        return ingest_in_batches(
            index,
            embedder,
            source,
            api,
            options,
            chunking=chunking,
            batch_size=batch_size,
            progress_for=lambda label: output.progress(label, enabled=not as_json),
            say=lambda line: click.echo(("\n" if bars else "") + line, err=True),  # below a bar, not on it
        )
    except KeyboardInterrupt:
        click.echo(
            "Interrupted: the batches submitted are recorded in the index; run the same command again "
            "to collect them (they are not submitted again).",
            err=True,
        )
        raise SystemExit(130) from None
    finally:
        api.close()


def _watch(settings: Settings, paths: tuple[Path, ...], options: Any, interval: float, as_json: bool) -> None:
    """Ingest again every `interval` seconds, printing a summary when something changed."""
    from search.watch import Watcher

    def report(result: Any) -> None:
        if isinstance(result, Exception):
            click.echo(f"Error: {result}", err=True)
        elif result.ingested or result.removed or result.skipped:
            output.print_ingest(result, settings.index_dir, service.embedder.name, as_json)

    click.echo(f"Watching {', '.join(map(str, paths))} (Ctrl-C to stop)", err=True)
    with open_service(settings.updated(chat_model="none")) as service, suppress(KeyboardInterrupt):
        Watcher(service, paths, options, interval=interval, report=report).run_forever()


def _store_of(settings: Settings) -> str:
    """The store the ingest writes to: the existing index's, else the one asked for a new index."""
    from indexes import store_exists
    from indexes.manifest import read_manifest

    if store_exists(settings.index_dir):
        return read_manifest(settings.index_dir).store
    return settings.store or "local"


def _embedder_for(settings: Settings, remote: RemoteOptions) -> Embedder:
    """A new index's embedder is the one asked for; an existing index keeps its own (asking for another is an error)."""
    from indexes import store_exists
    from indexes.manifest import read_manifest
    from ingest import IngestConfigError, embedder_for_index, make_embedder

    if not store_exists(settings.index_dir):
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
