"""Relevance scores in [0, 1] that mean the same from one query to the next.

The fused value ranks well but only within its own query (z-scores over that query's
candidates). A score draws on absolute evidence instead: the passage's cosine to the
query, clipped at 0, and its lexical strength, its BM25 as a share of the most BM25 any
passage could score for the query's words. Hybrid search weighs the two as fusion does
(0.55 and 0.45).
Down a ranked list the score never rises: each is capped by the one above it, so a
list keeps its order (set by fusion or a reranker) and no passage is scored above its
own evidence or that of a passage ranked higher.
"""

from __future__ import annotations

from collections.abc import Sequence

from .fusion import ALPHA

Detail = dict[str, float | int | None]


def lexical_strength(bm25: float | None, ceiling: float) -> float:
    """A BM25 score as a share of the most the query's words could score: 0 (no match) to 1."""
    if not bm25 or ceiling <= 0:
        return 0.0
    return min(max(bm25 / ceiling, 0.0), 1.0)


def evidence(cosine: float | None, lexical: float | None) -> float:
    """How relevant a passage is by the signals known for it, in [0, 1]: both weighed as fusion weighs them."""
    if cosine is None or lexical is None:
        known = cosine if cosine is not None else lexical
        return _clip(known) if known is not None else 0.0
    return ALPHA * _clip(cosine) + (1 - ALPHA) * _clip(lexical)


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def descending(values: Sequence[float]) -> list[float]:
    """Each value capped by those before it: a list that never rises, none above its own value."""
    out: list[float] = []
    for value in values:
        out.append(min(value, out[-1]) if out else value)
    return out
