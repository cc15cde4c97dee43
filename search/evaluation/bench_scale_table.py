"""The `bench-scale` report as a table for people (`--json` prints the report itself)."""

from __future__ import annotations

from typing import Any

from .bench_scale import CONNECTIONS, MODES


def format_report(report: dict[str, Any]) -> str:
    """A few aligned lines: ingest, disk, serve, latency and throughput per mode, recall, add one document."""
    lines = [
        f"bench-scale: {report['index']['chunks']:,} chunks ({report['corpus']['source']} corpus, hash/bow-384); "
        f"load average {_loads(report['load_average_before'])} before, {_loads(report['load_average_after'])} after",
        f"ingest       {_ingest(report['ingest'])}",
        f"merge        {_merge(report.get('merge_after_ingest'))}",
        f"segments     {', '.join(report['index']['segments']) or 'none'}",
        f"disk         {_mib(report['index']['disk_bytes'])}, {report['index']['bytes_per_chunk']:,} bytes per chunk; "
        f"{report['index'].get('bytes_per_chunk_settled', 0):,} once the "
        f"{_mib(report['index'].get('retired_bytes', 0))} of merged-away segments go "
        f"({', '.join(f'{name} {_mib(size)}' for name, size in report['index']['largest'].items())})",
        f"serve        cold start {report['serve']['cold_start_seconds']:.2f} s (spawn to first answered search); "
        f"RSS after the queries, search workers included, {_mib(report['serve']['rss_bytes'])} "
        f"(peak {_mib(report['serve']['peak_rss_bytes'])})",
        f"http         load from {report['http']['load']}",
        f"{'':<43}{'conns':>6}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}{'server cores':>14}{'client ms/req':>15}",
    ]
    for name in ("floor", *MODES):
        label = f"floor ({report['http']['floor_route']})" if name == "floor" else name
        for connections in CONNECTIONS:
            run = report["http"][f"{connections}_connections"][name]
            lines.append(
                f"             {label:<30}{connections:>6}{run['p50_ms']:>9.2f}{run['p95_ms']:>9.2f}"
                f"{run['req_per_s']:>9.1f}{run['server_cores']:>14.2f}{run['client_cpu_ms']:>15.3f}"
            )
    recall = report["recall_at_10"]
    lines.append(
        "recall@10    "
        + (f"{recall:.4f} (dense, default search vs exact)" if recall is not None else "n/a (no exact search)")
    )
    added = report["add_one_document"]
    lines.append(
        f"add one doc  {added['seconds']:.3f} s ({added['chunks']} chunks, ingest and publish while served; "
        f"visible to the server: {'yes' if added['visible_to_server'] else 'no'}); "
        f"removing it {added['remove_seconds']:.3f} s"
    )
    return "\n".join(lines)


def _ingest(ingest: dict[str, Any]) -> str:
    if ingest["reused"]:
        return "reused the index (--reuse): not timed"
    return (
        f"{ingest['chunks']:,} chunks in {ingest['seconds']:.1f} s: {ingest['chunks_per_second']:,.0f} chunks/s "
        f"(CPU {ingest['cpu_seconds']:.1f} s, embedding {ingest['embed_seconds']:.1f} s)"
    )


def _merge(merge: dict[str, Any] | None) -> str:
    if merge is None:
        return "none (reused index)"
    done = "; ".join(merge["merges"]) or "nothing to merge"
    paused = merge.get("writers_paused_seconds", 0.0)
    times = f"{merge['seconds']:.1f} s (CPU {merge['cpu_seconds']:.1f} s; writers paused {paused} s)"
    return f"{done}: {times}, before serving"


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _loads(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)
