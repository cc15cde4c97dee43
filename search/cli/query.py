"""The commands that read an index: `search`, `ask` and `stats`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from search.settings import DEFAULT_ASK_K, DEFAULT_K, DEFAULT_MIN_SCORE

from . import output
from .common import (
    base_url_option,
    errors,
    filter_option,
    fusion_option,
    index_option,
    json_option,
    mode_option,
    open_service,
    settings_for,
)

min_score_option = click.option(
    "--min-score",
    type=click.FloatRange(0, 1),
    help="Only passages scoring at least this (scores run from 0 to 1).",
)


@click.command("search")
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
@fusion_option
@click.option("--explain", is_flag=True, help="Show the dense and lexical ranks behind each result.")
@click.option(
    "--reranker",
    help="Rerank with a cross-encoder folder (model.onnx + tokenizer.json) or a /rerank base URL "
    "[default: $SEMSEARCH_RERANKER, else none].",
)
@min_score_option
@click.option("--exact", is_flag=True, help="Scan every vector (large segments are searched approximately).")
@base_url_option
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
    min_score: float | None,
    exact: bool,
    base_url: str | None,
    filters: Any,
    as_json: bool,
) -> None:
    """Print the passages that best match QUERY.

    \b
    semsearch search "vector index types" -k 5
    semsearch search "error 42" --mode lexical --json | jq '.results[0].path'
    """
    settings = settings_for(index_dir).updated(chat_model="none", reranker=reranker, openai_base_url=base_url)
    with open_service(settings, k=k) as service:
        hits = service.search(query, k, mode, fusion, filters, min_score, exact=exact)
    output.print_hits(query, mode, hits, as_json=as_json, explain=explain)


@click.command()
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
    type=click.FloatRange(0, 1),
    help=f"Abstain when no passage scores this much [default: $SEMSEARCH_MIN_SCORE, else {DEFAULT_MIN_SCORE}].",
)
@click.option("--moderate", is_flag=True, default=None, help="Screen the question with /v1/moderations first.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Print the answer as it is written.")
@base_url_option
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
    base_url: str | None,
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
        openai_base_url=base_url,
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


@click.command()
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
