"""The search service: an opened index, the embedder its manifest names, and an answerer."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from indexes import Facets, Index, MilvusOptions, open_store
from ingest import Embedder, OpenAIClient, RateLimiter, RemoteOptions, embedder_for_index
from ingest.openai_models import DEFAULT_BASE_URL
from search.answers.abstain import abstention
from search.answers.chat import ChatAnswerer, ChatOptions
from search.answers.extractive import Answer, extractive_answer

from .errors import ConfigError
from .filters import Filter
from .fusion import DEFAULT_FUSION
from .rerank import Reranker, make_reranker, rerank_hits
from .retrieve import DEFAULT_MODE, Hit, check_query, search
from .search_pool import SearchPool
from .settings import DEFAULT_ASK_K, DEFAULT_K, DEFAULT_MIN_SCORE, MAX_K, QueryLimits, Settings

_EXTRACTIVE_NOTE = "no chat model is configured (set SEMSEARCH_CHAT_MODEL or OPENAI_API_KEY for written answers)"


class SearchService:
    """Search and ask over one index; safe to share between threads."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        answerer: ChatAnswerer | None = None,
        reranker: Reranker | None = None,
        rerank_depth: int = 30,
        owns_embedder: bool = True,
        limits: QueryLimits = QueryLimits(),
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> None:
        index.manifest.check_model(embedder.name, embedder.dimension)
        self.index = index
        self.embedder = embedder
        self.answerer = answerer
        self.reranker, self.rerank_depth = reranker, rerank_depth
        self.owns_embedder = owns_embedder
        self.limits = limits
        self.min_score = min_score  # answers abstain when no passage scores this much
        self.pool: SearchPool | None = None  # when set, searches run in its worker processes
        self._facets: tuple[int, Facets] | None = None  # (generation, facets): the page asks on every load
        self._facets_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        folder: Path,
        *,
        cache_dir: Path,
        remote: RemoteOptions | None = None,
        milvus: MilvusOptions | None = None,
        **extras: Any,
    ) -> SearchService:
        """Open the index at `folder` (in whichever store its manifest names) and the embedder it records."""
        index = open_store(folder, milvus=milvus)
        try:
            manifest = index.manifest
            embedder = embedder_for_index(
                manifest.embedder, manifest.embedding_model, cache_dir=cache_dir, remote=remote
            )
        except BaseException:
            index.close()
            raise
        try:
            return cls(index, embedder, **extras)
        except BaseException:
            embedder.close()
            index.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings, *, embedder: Embedder | None = None) -> SearchService:
        """The service the CLI and the app run: index, embedder, answerer and reranker from settings.

        An `embedder` given (shared by several indexes) must be the index's own and is not closed here.
        """
        if embedder is None:
            service = cls.open(
                settings.index_dir,
                cache_dir=settings.cache_dir,
                remote=settings.remote(),
                milvus=settings.milvus(),
                rerank_depth=settings.rerank_depth,
                limits=settings.query_limits,
                min_score=settings.min_score,
            )
        else:
            index = open_store(settings.index_dir, milvus=settings.milvus())
            try:
                service = cls(
                    index,
                    embedder,
                    rerank_depth=settings.rerank_depth,
                    owns_embedder=False,
                    limits=settings.query_limits,
                    min_score=settings.min_score,
                )
            except BaseException:
                index.close()
                raise
        try:  # the index opens first: a missing one must not leave HTTP clients behind
            service.answerer = make_answerer(settings)
            service.reranker = make_reranker(
                settings.reranker, model=settings.rerank_model, api_key=settings.openai_api_key
            )
        except BaseException:
            service.close()
            raise
        return service

    def search(
        self,
        query: str,
        k: int = DEFAULT_K,
        mode: str = DEFAULT_MODE,
        fusion: str = DEFAULT_FUSION,
        filters: Filter | None = None,
        min_score: float | None = None,
        *,
        exact: bool = False,
    ) -> list[Hit]:
        """The k best passages for `query` among documents matching `filters` (and scoring `min_score`, if given).

        With a reranker, they are reranked from a deeper list. The service's limits apply. `exact`: see `search`.
        """
        if self.pool is not None:
            return self.pool.search(self.index.folder, query, k, mode, fusion, filters, min_score, exact=exact)
        if self.reranker is None:
            hits = search(self.index, self.embedder, query, k, mode, fusion, filters, self.limits, exact=exact)
        else:
            check_query(query, k, mode, fusion, self.limits)
            depth = max(k, min(self.rerank_depth, MAX_K))
            candidates = search(self.index, self.embedder, query, depth, mode, fusion, filters, exact=exact)
            hits = rerank_hits(self.reranker, query, candidates, k)
        return hits if min_score is None else [h for h in hits if h.score >= min_score]

    def ask(
        self, question: str, k: int = DEFAULT_ASK_K, mode: str = DEFAULT_MODE, filters: Filter | None = None
    ) -> Answer:
        """An answer from the k best passages of documents matching `filters`: by the chat model, or extractive."""
        text = check_query(question, k, mode, limits=self.limits)
        return self.answer(text, self.search(text, k, mode, filters=filters))

    def ask_stream(
        self, question: str, k: int = DEFAULT_ASK_K, mode: str = DEFAULT_MODE, filters: Filter | None = None
    ) -> Iterator[dict[str, Any]]:
        """The answer as events: text deltas, then {"type": "answer", "answer": Answer}."""
        text = check_query(question, k, mode, limits=self.limits)
        yield from self.answer_stream(text, self.search(text, k, mode, filters=filters))

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        """An answer to `question` from the given passages (best first): by the chat model, or extractive.

        Grounded as /ask's answers are: citations checked, abstention when no passage reaches the floor.
        """
        if self.answerer is not None:
            return self.answerer.answer(question, hits)
        abstained = abstention(question, hits, self.min_score, mode="extractive")
        answer = abstained or extractive_answer(question, hits[:5], self.embedder)
        return replace(answer, notes=(*answer.notes, _EXTRACTIVE_NOTE), results=tuple(hits))

    def answer_stream(self, question: str, hits: Sequence[Hit]) -> Iterator[dict[str, Any]]:
        """`answer` as events: text deltas as the chat model writes them, then {"type": "answer", "answer": Answer}."""
        if self.answerer is not None:
            yield from self.answerer.stream(question, hits)
            return
        answer = self.answer(question, hits)
        yield {"type": "delta", "text": answer.answer}
        yield {"type": "answer", "answer": answer}

    def facets(self) -> Facets:
        """The documents' file types and attribute values, counted once per generation of the index."""
        with self.index.read() as reader:
            generation, cached = reader.generation(), self._facets
            if cached is None or cached[0] != generation:
                with self._facets_lock:  # pages loading together after a publish count them once, not each
                    cached = self._facets
                    if cached is None or cached[0] != generation:
                        cached = self._facets = (generation, reader.facets())
        return cached[1]

    def stats(self) -> dict[str, Any]:
        """Documents, chunks, model, index type, size on disk, and chat usage."""
        stats = self.index.stats().as_dict()
        if self.answerer is not None:
            stats["chat"] = {"model": self.answerer.options.model, **self.answerer.spent.as_dict()}
        return stats

    def close(self) -> None:
        """Close the catalog connection and the HTTP connections."""
        self.index.close()
        if self.owns_embedder:
            self.embedder.close()
        if self.answerer is not None:
            self.answerer.close()
        if self.reranker is not None:
            self.reranker.close()


def make_answerer(settings: Settings, **options: Any) -> ChatAnswerer | None:
    """The chat answerer the settings ask for (None: answers stay extractive)."""
    if not settings.chat_model:
        return None
    provider, _, model = settings.chat_model.partition("/")
    if provider != "openai" or not model:
        raise ConfigError(f"chat model {settings.chat_model!r}: use openai/NAME, e.g. openai/gpt-4o-mini")
    base_url = settings.chat_base_url or settings.openai_base_url or DEFAULT_BASE_URL
    client = OpenAIClient(base_url, settings.openai_api_key, limiter=RateLimiter(), max_retries=3, timeout=120.0)
    chosen = {
        "model": model,
        "context_window": settings.chat_context_window,
        "min_score": settings.min_score,
        "moderate": settings.moderate,
        **{k: v for k, v in options.items() if v is not None},
    }
    return ChatAnswerer(client, ChatOptions(**chosen))
