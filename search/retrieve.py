"""Retrieval: dense (FAISS), lexical (BM25, tantivy) and hybrid (the two fused: z-scores by default, or RRF)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from indexes import Index, Reader, StoredChunk
from indexes.errors import LexicalUnavailable
from ingest import Embedder

from .errors import InvalidQuery
from .filters import Filter
from .fusion import DEFAULT_FUSION, FUSIONS, Detail, Fused, feedback_query, fuse
from .lexical import query_terms
from .scores import descending, evidence, lexical_strength
from .settings import DEFAULT_K, QueryLimits

logger = logging.getLogger("semsearch.search")

MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = MODES[0]
DEPTH = 300  # candidates from each side: fewer cost recall, more cost time for nothing
FEEDBACK_POOL = 50  # the best fused passages the feedback pass picks its documents from


@dataclass(frozen=True)
class Hit:
    """One passage found for a query: the stored passage, wrapped with its score."""

    stored: StoredChunk
    score: float  # relevance in [0, 1], comparable across queries (search/scores.py)
    explain: dict[str, float | int | None] = field(default_factory=dict)
    snippet: str = ""  # the passage's best fragment, query words in <mark> tags

    @property
    def chunk_id(self) -> int:
        return self.stored.chunk_id

    @property
    def document_id(self) -> int:
        return self.stored.document_id

    @property
    def path(self) -> str:
        return self.stored.path

    @property
    def title(self) -> str:
        return self.stored.title

    @property
    def text(self) -> str:
        return self.stored.chunk.text

    @property
    def page(self) -> int | None:
        return self.stored.chunk.page

    def as_dict(self, *, explain: bool = False) -> dict[str, object]:
        chunk = self.stored.chunk
        out: dict[str, object] = {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "path": self.path,
            "title": self.title,
            "page": chunk.page,
            "text": chunk.text,
            "score": round(self.score, 6),
            "heading": chunk.heading,
            "char_start": chunk.char_start,
            "char_end": chunk.char_end,
            "snippet": self.snippet,
        }
        if explain:
            out["explain"] = self.explain
        return out


def check_query(
    query: str, k: int, mode: str, fusion: str = DEFAULT_FUSION, limits: QueryLimits = QueryLimits()
) -> str:
    """Validate a query's text, k, mode and fusion; returns the stripped text."""
    text = query.strip() if isinstance(query, str) else ""
    if not text:
        raise InvalidQuery("the query is empty: give some words to search for")
    limits.check(text, k)
    if mode not in MODES:
        raise InvalidQuery(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if fusion not in FUSIONS:
        raise InvalidQuery(f"fusion must be one of {', '.join(FUSIONS)}, not {fusion!r}")
    return text


def search(
    index: Index,
    embedder: Embedder,
    query: str,
    k: int = DEFAULT_K,
    mode: str = DEFAULT_MODE,
    fusion: str = DEFAULT_FUSION,
    filters: Filter | None = None,
    limits: QueryLimits = QueryLimits(),
    *,
    exact: bool = False,
) -> list[Hit]:
    """The k best passages for a query (among the documents that match `filters`, if given).

    With `exact`, the dense side scans every vector instead of the nearest lists of large segments.
    """
    text = check_query(query, k, mode, fusion, limits)
    with index.read() as reader:
        vector = embedder.embed_query(text) if mode != "lexical" else None
        depth = max(DEPTH, 4 * k)
        ranked = rank_chunks(reader, embedder, text, mode, depth, fusion, filters, vector=vector, exact=exact, limit=k)
        hits = _scored(reader, text, vector, _hits(reader, ranked))
        marked = reader.snippets(query_terms(text), [h.chunk_id for h in hits])
    return [replace(h, snippet=marked.get(h.chunk_id) or _lead(h.text)) for h in hits]


def _scored(reader: Reader, text: str, vector: np.ndarray | None, hits: list[Hit]) -> list[Hit]:
    """The hits with their scores in [0, 1] (`search/scores.py`); the ranking's own value stays in `explain`."""
    ids = [h.chunk_id for h in hits]
    cosines = (reader.vectors(ids) @ vector).tolist() if vector is not None and ids else [None] * len(hits)
    lexical = any(h.explain.get("lexical_rank") is not None for h in hits) or vector is None
    ceiling = reader.lexical_ceiling(query_terms(text)) if lexical and hits else 0.0
    explained = []
    for hit, cosine in zip(hits, cosines):
        detail: Detail = {**hit.explain}
        if cosine is not None:
            detail["cosine"] = round(cosine, 6)
        if lexical:
            bm25 = hit.explain.get("lexical_score")
            detail["lexical_strength"] = round(lexical_strength(float(bm25) if bm25 is not None else None, ceiling), 6)
        explained.append(replace(hit, explain=detail))
    return with_scores(explained)


def with_scores(hits: Sequence[Hit]) -> list[Hit]:
    """The hits, in their order, scored by their evidence and never rising down the list."""
    scores = descending([evidence(_get(h, "cosine"), _get(h, "lexical_strength")) for h in hits])
    return [replace(h, score=score) for h, score in zip(hits, scores)]


def _get(hit: Hit, key: str) -> float | None:
    value = hit.explain.get(key)
    return float(value) if value is not None else None


def _lead(text: str, limit: int = 200) -> str:
    """The opening of a passage that matched no query word (found by meaning alone)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"


def rank_chunks(
    reader: Reader,
    embedder: Embedder,
    text: str,
    mode: str,
    depth: int,
    fusion: str = DEFAULT_FUSION,
    filters: Filter | None = None,
    *,
    vector: np.ndarray | None = None,
    exact: bool = False,
    limit: int | None = None,
) -> Fused:
    """Chunk ids with fused scores and the per-side ranks/scores behind them, best first.

    Hybrid search runs twice on the dense side: the second time with the query moved
    towards the best passages of the first fused pass (pseudo-relevance feedback).
    Filters apply inside each search (a FAISS id selector, a catalog condition), never
    after it, so `depth` candidates come back whenever that many matching chunks exist.
    """
    mode = _mode_this_store_can(reader, mode)
    query = None if mode == "lexical" else vector if vector is not None else embedder.embed_query(text)
    dense = reader.dense(query, depth, filters, exact=exact) if query is not None else []
    lexical = reader.lexical(query_terms(text), depth, where=filters) if mode != "dense" else []
    if mode == "dense":
        return [(cid, s, {"dense_rank": r, "dense_score": s}) for r, (cid, s) in enumerate(dense[:limit], 1)]
    if mode == "lexical":
        return [(cid, s, {"lexical_rank": r, "lexical_score": s}) for r, (cid, s) in enumerate(lexical[:limit], 1)]
    if query is None or not dense:
        return fuse(dense, lexical, fusion, limit)
    fused = fuse(dense, lexical, fusion, FEEDBACK_POOL)
    moved = feedback_query(query, fused, reader.documents_of([cid for cid, _, _ in fused]), reader.vectors)
    return fuse(reader.dense(moved, depth, filters, exact=exact), lexical, fusion, limit)


def _mode_this_store_can(reader: Reader, mode: str) -> str:
    """`mode`, or dense for hybrid on a store without lexical search (said once in the log); lexical search
    there is an error saying why (`LexicalUnavailable`, a 422 over HTTP)."""
    reason = reader.lexical_unavailable() if mode != "dense" else None
    if reason is None:
        return mode
    if mode == "lexical":
        raise LexicalUnavailable(reason)
    if reason not in _said:
        _said.add(reason)
        logger.warning("%s", reason)
    return "dense"


_said: set[str] = set()  # fallbacks already logged by this process


def _hits(reader: Reader, ranked: Sequence[tuple[int, float, dict[str, float | int | None]]]) -> list[Hit]:
    rows = reader.chunks([cid for cid, _, _ in ranked])
    return [Hit(rows[cid], score, detail) for cid, score, detail in ranked if cid in rows]


def rank_documents(
    index: Index,
    embedder: Embedder,
    query: str,
    mode: str = DEFAULT_MODE,
    depth: int = 100,
    fusion: str = DEFAULT_FUSION,
    filters: Filter | None = None,
) -> list[tuple[str, float]]:
    """Documents (by path) scored by their best passage, best first: what evaluation ranks."""
    text = check_query(query, 1, mode, fusion)
    with index.read() as reader:
        ranked = rank_chunks(reader, embedder, text, mode, max(DEPTH, depth * 3), fusion, filters)
        rows = reader.chunks([cid for cid, _, _ in ranked])
    best: dict[str, float] = {}
    for cid, score, _ in ranked:
        path = rows[cid].path if cid in rows else None
        if path is not None and path not in best:
            best[path] = score
    return sorted(best.items(), key=lambda item: -item[1])[:depth]
