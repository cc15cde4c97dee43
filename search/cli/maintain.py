"""`semsearch optimize`: merge an index's vector segments into one and compact its catalog."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from indexes import open_store

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
