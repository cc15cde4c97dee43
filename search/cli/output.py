"""How the CLI prints: JSON for tools, trimmed text for people, a progress bar on terminals."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ingest import IngestSummary, price_of
from search.answers.extractive import Answer
from search.retrieve import Hit

_TRIM = 320


@contextmanager
def progress(label: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """A callback drawing a progress bar on stderr when it is a terminal (else None)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bar: Any = None
    shown = 0

    def update(done: int, total: int) -> None:
        nonlocal bar, shown
        if bar is None:
            bar = click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_eta=True, show_pos=True)
            bar.__enter__()
        bar.update(done - shown)
        shown = done

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def display_path(path: str) -> str:
    """A path relative to the working folder when it is under it."""
    try:
        return (
            os.path.relpath(path)
            if Path(path).is_absolute() and Path(path).resolve().is_relative_to(Path.cwd())
            else path
        )
    except (OSError, ValueError):
        return path


def _dump(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=None))


def print_hits(query: str, mode: str, hits: Sequence[Hit], *, as_json: bool, explain: bool = False) -> None:
    if as_json:
        _dump({"query": query, "mode": mode, "results": [h.as_dict(explain=explain) for h in hits]})
        return
    if not hits:
        click.echo("No passage matches.")
    for rank, hit in enumerate(hits, 1):
        where = display_path(hit.path) + (f"  p. {hit.page}" if hit.page else "")
        click.echo(click.style(f"{rank:>2}. {hit.score:.4f}  {where}", bold=True))
        section = hit.stored.chunk.heading
        heading = f"{hit.title} > {section}" if section and section != hit.title else hit.title
        if heading:
            click.echo(f"    {heading}")
        click.echo(f"    {_marked(hit.snippet) if hit.snippet else _trim(hit.text)}")
        if explain and hit.explain:
            click.echo("    " + ", ".join(f"{k}={_num(v)}" for k, v in hit.explain.items()))
        click.echo()


def print_answer(answer: Answer, as_json: bool, *, body: bool = True) -> None:
    if as_json:
        _dump(answer.as_dict())
        return
    if body:
        click.echo(answer.answer)
    if answer.citations:
        click.echo()
        for c in answer.citations:
            title = c.stored.title
            click.echo(
                f"[{c.number}] {display_path(c.path)}"
                + (f", p. {c.page}" if c.page else "")
                + (f" ({title})" if title else "")
            )
            click.echo(click.style(f'    "{c.quote}"', dim=True))
    notes = list(answer.notes)
    usage = answer.usage
    if usage.get("total_tokens"):
        cost = f", ${usage['cost_usd']:.6f}" if usage.get("cost_usd") is not None else ""
        notes.append(f"{answer.model}: {usage['prompt_tokens']} tokens in, {usage['completion_tokens']} out{cost}")
    for note in notes:
        click.echo(click.style(f"({note})", dim=True))


def print_ingest(summary: IngestSummary, index_dir: Path, model: str, as_json: bool) -> None:
    name = model.partition("/")[2]
    cost = {"estimated" if summary.dry_run else "paid": _price(name, summary.embedded_tokens)}
    if as_json:
        _dump({"index": str(index_dir), "embedding_model": model, **summary.as_dict(), "cost_usd": cost})
        return
    s = summary
    click.echo(("Dry run (nothing embedded or written) for " if s.dry_run else "Index: ") + str(index_dir))
    if s.batch.get("pending"):  # batches submitted, nothing ingested yet
        _print_batch(s)
        return
    click.echo(
        f"Files: {s.seen} seen, {s.ingested} {'to ingest' if s.dry_run else 'ingested'}, {s.unchanged} unchanged, "
        f"{s.removed} removed, {len(s.skipped)} skipped"
    )
    click.echo(
        f"Chunks: {s.chunks:,} ({s.embedded:,} {'to embed' if s.dry_run else 'embedded'}, "
        f"{s.chunks - s.embedded - s.from_batch:,} reused"
        + (f", {s.from_batch:,} from batches" if s.batch else "")
        + f"), tokens: {s.tokens:,}"
        f" ({s.embedded_tokens:,} sent{f' to {model}' if model else ''})"
    )
    if s.resumed and not s.dry_run:
        click.echo(f"Resumed: {s.resumed} document(s) an interrupted ingest had embedded and staged, published now")
    if not s.dry_run:
        click.echo(f"Time: {s.elapsed:.1f} s ({s.chunks_per_second:.1f} chunks/s; embedding {s.embed_seconds:.1f} s)")
    if s.upstream and not s.dry_run:
        u = s.upstream
        click.echo(
            f"Requests: {u['requests']} ({u['retries']} retries, {u['rate_limited']} rate-limited), "
            f"{u['tokens']:,} tokens billed, {u['tokens_per_minute']:,.0f} tokens/min"
        )
    if s.batch:
        _print_batch(s)
    for kind, prices in cost.items():
        if prices is not None and not s.batch:
            click.echo(
                f"Cost ({kind}): ${prices['standard']:,.6f} standard, ${prices['batch']:,.6f} with the batch API"
            )
    if s.skipped:
        click.echo("Skipped:")
        for item in s.skipped:
            click.echo(f"  {display_path(item.path)}: {item.reason}")


def _print_batch(s: IngestSummary) -> None:
    """What `ingest --batch` submitted, collected and paid (or, on a dry run, would)."""
    b, usd = s.batch, s.batch["cost_usd"]
    if s.dry_run:
        click.echo(
            f"Batch API: would submit {b['submitted']:,} batches ({b['submitted_requests']:,} requests, "
            f"{b['submitted_inputs']:,} passages, {b['submitted_tokens']:,} tokens)"
        )
        if usd["batch"] is not None:
            click.echo(
                f"Cost (estimated): ${usd['batch']:,.6f} with the batch API, ${usd['synchronous']:,.6f} standard"
            )
        return
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(b["statuses"].items()))
    click.echo(
        f"Batch API: {b['submitted']} submitted, {b['resumed']} resumed, {b['collected']} collected"
        + (f" ({statuses})" if statuses else "")
        + f"; {b['delivered']:,} vectors delivered, {b['failed_lines']:,} failed requests; "
        f"{b['api_requests']:,} API requests"
    )
    for lost in b.get("lost", []):
        click.echo(f"Batch not collected, its passages are embedded synchronously instead: {lost}")
    if b["pending"]:
        click.echo(f"{b['pending']} batches still running: run the same command again to collect them and finish.")
        return
    click.echo(f"Passages: {s.from_batch:,} embedded through batches, {s.embedded:,} synchronously (fallback)")
    if usd["total"] is not None:
        click.echo(
            f"Cost: ${usd['batch']:,.6f} through the batch API + ${usd['fallback']:,.6f} synchronous = "
            f"${usd['total']:,.6f} (all synchronous: ${usd['synchronous']:,.6f})"
        )


def _price(model: str, tokens: int) -> dict[str, float] | None:
    standard, batch = price_of(model, tokens), price_of(model, tokens, batch=True)
    return None if standard is None or batch is None else {"standard": round(standard, 6), "batch": round(batch, 6)}


def print_stats(stats: dict[str, Any], as_json: bool) -> None:
    """The index's stats: JSON as `GET /stats` sends it, or one line each for people (times in ISO 8601 UTC)."""
    if as_json:
        _dump(stats)
        return
    for key, value in stats.items():
        label = "size" if key == "size_bytes" else key.replace("_", " ")
        click.echo(f"{label:>16}: {_stat(key, value)}")


def _stat(key: str, value: object) -> str:
    if value is None:
        return "never" if key == "last_ingest" else "-"
    if key == "size_bytes" and isinstance(value, int):
        return _size(value)
    if key == "chat" and isinstance(value, dict):
        return (
            f"{value.get('model')}: {value.get('answers', 0):,} answers, {value.get('prompt_tokens', 0):,} tokens in, "
            f"{value.get('completion_tokens', 0):,} out, ${value.get('cost_usd', 0.0):,.6f}"
        )
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_stat(k, v)}" for k, v in value.items())
    if key == "segments" and isinstance(value, list):
        return "; ".join(
            f"{s['kind']} {s['storage']} {s['vectors']:,} vectors, {s['tombstones']:,} deleted" for s in value
        )
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    value, units = size / 1024, ["KB", "MB", "GB", "TB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:,.1f} {units[0]} ({size:,} bytes)"


def print_eval(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _dump(report)
        return
    for key, value in report.items():
        click.echo(f"{key:>16}: {_num(value)}")


def _marked(snippet: str) -> str:
    """A snippet for a terminal: matching words in bold, on one line."""
    flat = " ".join(snippet.split())
    return re.sub(r"<mark>(.*?)</mark>", lambda m: click.style(m.group(1), bold=True), flat)


def _trim(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _TRIM else flat[: _TRIM - 1] + "…"


def _num(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_num(v)}" for k, v in value.items())
    return f"{value:.4f}" if isinstance(value, float) else str(value)
