"""The measuring commands: `eval`, `bench`, `bench-embeddings` and `bench-scale`."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from search.cli import output
from search.retrieve import MODES
from search.settings import Settings

from .common import errors, fusion_option, index_option, json_option, mode_option, open_service, settings_for


@click.command("eval")
@click.argument("dataset", type=click.Path(path_type=Path, exists=True))
@index_option
@mode_option
@click.option("--split", default="test", show_default=True, help="Which qrels/SPLIT.tsv to use (BEIR collections).")
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Passages retrieved per query (golden sets).",
)
@fusion_option
@json_option
@errors
def eval_command(
    dataset: Path, index_dir: Path | None, mode: str, split: str, k: int, fusion: str, as_json: bool
) -> None:
    """Measure retrieval: on a BEIR-layout collection, or on your own golden set.

    A BEIR folder (corpus.jsonl[.gz], queries.jsonl, qrels/test.tsv) is ingested
    first (into --index, or a cache folder per dataset; reused when already
    there) and scored with nDCG@10, recall@100 and MRR@10. A golden set is a
    JSONL file of {"query": ..., "expected": ["path", "path#page", ...]} run
    against an existing index, scored with hit@k, MRR@10, nDCG@10, recall@10.

    \b
    semsearch eval ../shared/datasets/scifact --mode hybrid --json
    semsearch eval golden.jsonl --index ./my-index --mode lexical
    """
    if dataset.is_file():
        from search.evaluation.golden import load_golden, run_golden

        queries = load_golden(dataset)
        settings = settings_for(index_dir).updated(chat_model="none")
        with open_service(settings, k=k) as service:
            report = {
                **run_golden(queries, lambda q: service.search(q, k, mode, fusion)),
                "mode": mode,
                "fusion": fusion,
                "k": k,
            }
        output.print_eval(report, as_json)
        return
    from search.evaluation.run import run_evaluation

    bar = functools.partial(output.progress, enabled=not as_json)
    report = run_evaluation(dataset, Settings.from_env(), index_dir, mode, split, fusion=fusion, progress_bar=bar)
    output.print_eval(report, as_json)


@click.command()
@click.argument("dataset_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--documents", type=click.IntRange(1), default=1000, show_default=True, help="Documents of the corpus to ingest."
)
@click.option("--queries", type=click.IntRange(1), default=300, show_default=True, help="Queries to time.")
@click.option(
    "--mode", "modes", type=click.Choice(MODES), multiple=True, help="Modes to time (repeatable) [default: all]."
)
@click.option(
    "--http/--no-http", default=True, show_default=True, help="Also time searches over HTTP (uvicorn on 127.0.0.1)."
)
@json_option
@errors
def bench(dataset_dir: Path, documents: int, queries: int, modes: tuple[str, ...], http: bool, as_json: bool) -> None:
    """Measure ingest throughput against the bare model, and search latency.

    Ingests the first documents of a BEIR-layout collection into a temporary
    index, embeds the same passages with the model alone, then times the
    collection's queries in process and over HTTP (p50/p95 in milliseconds).

    \b
    semsearch bench ../shared/datasets/scifact --documents 1000 --json
    """
    from search.evaluation.bench import run_benchmark

    report = run_benchmark(
        dataset_dir, Settings.from_env(), documents=documents, queries=queries, modes=modes or MODES, http=http
    )
    output.print_eval(report, as_json)


@click.command("bench-embeddings")
@click.option(
    "--rpm",
    type=click.IntRange(1),
    default=60,
    show_default=True,
    help="Requests per minute the simulated server allows.",
)
@click.option(
    "--tpm",
    type=click.IntRange(1),
    default=150_000,
    show_default=True,
    help="Tokens per minute the simulated server allows.",
)
@click.option(
    "--latency", type=click.FloatRange(0), default=0.05, show_default=True, help="Seconds the server takes per request."
)
@click.option("--seconds", type=click.FloatRange(1), default=120.0, show_default=True, help="How long each run lasts.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Requests in flight for the paced client.",
)
@json_option
@errors
def bench_embeddings(rpm: int, tpm: int, latency: float, seconds: float, concurrency: int, as_json: bool) -> None:
    """Measure the embeddings client against a rate-limited OpenAI simulator on 127.0.0.1.

    Prints the tokens per minute the server accepted as a fraction of its limit,
    and the 429s received, for our paced client and for naive sequential requests.

    \b
    semsearch bench-embeddings --rpm 60 --tpm 150000 --latency 0.05 --seconds 120
    """
    from search.evaluation.bench_embeddings import run_rate_benchmark

    report = run_rate_benchmark(
        rpm=rpm,
        tpm=tpm,
        latency=latency,
        seconds=seconds,
        concurrency=concurrency,
        cache_dir=Settings.from_env().cache_dir,
    )
    output.print_eval(report, as_json)


@click.command("bench-scale")
@click.option(
    "--chunks", type=click.IntRange(100), default=100_000, show_default=True, help="Synthetic passages to index."
)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the index in DIR (default: a temporary folder, removed at the end).",
)
@click.option("--reuse", is_flag=True, help="Measure the index already in --index (built by bench-scale at --chunks).")
@click.option(
    "--sample-from",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Draw words with the frequencies of a BEIR corpus (corpus.jsonl[.gz]) instead of the built-in generator.",
)
@click.option("--queries", type=click.IntRange(10), default=200, show_default=True, help="Queries per timed run.")
@click.option(
    "--vector-storage",
    type=click.Choice(["f32", "f16", "sq8"]),
    default="f32",
    show_default=True,
    help="How the new index keeps its vectors (as ingest --vector-storage).",
)
@json_option
@errors
def bench_scale(
    chunks: int,
    index_dir: Path | None,
    reuse: bool,
    sample_from: Path | None,
    queries: int,
    vector_storage: str,
    as_json: bool,
) -> None:
    """Measure the whole service at scale on a synthetic corpus, embedded by the fake hash/bow-384.

    Prints the ingest rate, disk, cold start, serve RSS, p50/p95 and throughput per mode over
    HTTP at 1 and 8 connections beside a constant route of the same server, dense recall@10
    against exact search, and the time to add one document to the big index.

    \b
    semsearch bench-scale --chunks 100000 --index /tmp/scale-100k
    semsearch bench-scale --chunks 100000 --index /tmp/scale-100k --reuse --json
    """
    from search.evaluation.bench_scale import ScaleOptions, run_bench_scale
    from search.evaluation.bench_scale_table import format_report

    options = ScaleOptions(
        chunks=chunks,
        index_dir=index_dir,
        reuse=reuse,
        sample_from=sample_from,
        queries=queries,
        vector_storage=vector_storage,
    )
    report = run_bench_scale(options, say=lambda line: None if as_json else click.echo(f"... {line}", err=True))
    if as_json:
        output.print_eval(report, as_json=True)
    else:
        click.echo(format_report(report))


COMMANDS = (eval_command, bench, bench_embeddings, bench_scale)
