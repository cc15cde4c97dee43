"""`semsearch optimize` (merge an index's vector segments, compact its catalog) and `semsearch migrate`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from indexes import STORES, Index, open_store
from indexes.migrate import copy_index

from . import output
from .common import errors, index_option, json_option, settings_for


@click.command()
@index_option
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds to wait for a running ingest.",
)
@json_option
@errors
def optimize(index_dir: Path | None, wait: float, as_json: bool) -> None:
    """Merge every vector segment into one, dropping deleted passages, and compact the catalog.

    Searches keep running meanwhile; an ingest waits only for the final swap. `serve` merges
    small segments in the background anyway: this is for after a large change.

    \b
    semsearch optimize --index ./my-index
    """
    settings = settings_for(index_dir)
    index = open_store(settings.index_dir, milvus=settings.milvus())
    if index.manifest.store != "local":
        _optimize_elsewhere(index, wait, as_json)
        return
    before = index.stats()
    started = time.perf_counter()
    result = index.optimize(wait=wait)
    after = index.stats()
    report = {
        "segments_before": len(before.segments),
        "segments_after": len(after.segments),
        "tombstones_dropped": result.dropped if result else 0,
        "vectors": sum(s.vectors for s in after.segments),
        "kind": after.segments[0].kind if after.segments else None,
        "seconds": round(time.perf_counter() - started, 3),
        "locked_seconds": round(result.locked_seconds, 3) if result else 0.0,
        "size_bytes_before": before.size_bytes,
        "size_bytes_after": after.size_bytes,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"{report['segments_before']} segment(s) -> {report['segments_after']} ({report['kind']}), "
        f"{report['vectors']:,} vectors, {report['tombstones_dropped']:,} deleted passages dropped; "
        f"{report['seconds']} s (writers paused {report['locked_seconds']} s); "
        f"{before.size_bytes / 2**20:,.1f} MiB -> {after.size_bytes / 2**20:,.1f} MiB "
        "(merged-away segment files go after a grace period, at a later write)"
    )


def _optimize_elsewhere(index: Index, wait: float, as_json: bool) -> None:
    """A Milvus index: Milvus merges its own segments; optimize asks it to compact (deleted rows go)."""
    started = time.perf_counter()
    try:
        index.optimize(wait=wait)
    finally:
        index.close()
    report = {"index": str(index.folder), "store": index.manifest.store, "compacted": True}
    report["seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"Asked Milvus to compact the collections of {index.folder} ({report['seconds']} s): deleted passages "
        "go as Milvus rewrites its segments, in the background; it merges and indexes segments by itself"
    )


@click.command()
@index_option
@click.option("--to", "to_store", type=click.Choice(STORES), required=True, help="The store to copy the index into.")
@click.option(
    "--into",
    type=click.Path(path_type=Path, file_okay=False),
    help="The new index folder [default: the index's folder with -milvus or -local appended].",
)
@json_option
@errors
def migrate(index_dir: Path | None, to_store: str, into: Path | None, as_json: bool) -> None:
    """Copy an index into another store without embedding anything again.

    The index is only read; the copy is a new index folder (its manifest names the store). Searches of
    the copy rank as the original's do: the same passages and vectors, a different engine.

    \b
    semsearch migrate --index ./my-index --to milvus --milvus-uri http://milvus:19530
    semsearch migrate --index ./my-index --to milvus --into ./my-index-lite   # a Milvus Lite file inside it
    semsearch migrate --index ./my-index-milvus --to local --into ./back-home
    """
    settings = settings_for(index_dir)
    source = open_store(settings.index_dir, milvus=settings.milvus())
    target = into or settings.index_dir.with_name(f"{settings.index_dir.name}-{to_store}")
    started = time.perf_counter()
    try:
        if source.manifest.store == to_store:
            raise click.UsageError(f"the index at {settings.index_dir} is already in the {to_store} store")
        with output.progress("Copying", enabled=not as_json) as progress:
            result = copy_index(source, target, to_store, milvus=settings.milvus(), progress=progress)
    finally:
        source.close()
    report = {
        "index": str(target),
        "store": to_store,
        "from": str(settings.index_dir),
        "documents": result.documents_written,
        "chunks": result.chunks_added,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(
        f"Copied {report['documents']:,} documents ({report['chunks']:,} passages, nothing embedded) from "
        f"{report['from']} into {report['index']} ({to_store} store) in {report['seconds']} s"
    )
