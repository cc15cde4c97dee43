"""Fusing the dense and lexical rankings, and dense-side pseudo-relevance feedback.

The default is a calibrated weighted sum: each side's scores are z-normalised over
its own candidate list (cosines and BM25 live on different scales), a chunk missing
from one side gets that side's lowest z, and the fused score is 0.55 z_dense + 0.45
z_lexical. Measured against reciprocal-rank fusion (kept as `rrf`): SciFact nDCG@10
0.712 -> 0.739, Cranfield 0.417 -> 0.426 (see the README's quality table).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Ranking = Sequence[tuple[int, float]]
Detail = dict[str, float | int | None]
Fused = list[tuple[int, float, Detail]]

FUSIONS = ("zscore", "rrf")
DEFAULT_FUSION = FUSIONS[0]
ALPHA = 0.55  # weight of the dense side; tuned on SciFact, checked on Cranfield
RRF_K = 60  # the constant of reciprocal-rank fusion (Cormack et al., 2009)
FEEDBACK_DOCS, FEEDBACK_BETA = 3, 0.3


def fuse(dense: Ranking, lexical: Ranking, method: str = DEFAULT_FUSION, limit: int | None = None) -> Fused:
    """Chunks of both rankings with a fused score and the per-side ranks and scores, best first.

    With `limit`, only that many come back (the per-chunk detail is built for those only).
    """
    sides: dict[int, list[tuple[int, float] | None]] = {}
    for side, ranking in enumerate((dense, lexical)):
        for rank, (chunk_id, score) in enumerate(ranking, 1):
            sides.setdefault(chunk_id, [None, None])[side] = (rank, score)
    scores = _zscore(dense, lexical, sides) if method == "zscore" else _rrf(sides)
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:limit]
    return [(cid, scores[cid], _detail(sides[cid], scores[cid])) for cid in best]


def _detail(sides: list[tuple[int, float] | None], fused: float) -> Detail:
    dense, lexical = sides
    return {
        "dense_rank": dense[0] if dense else None,
        "dense_score": dense[1] if dense else None,
        "lexical_rank": lexical[0] if lexical else None,
        "lexical_score": lexical[1] if lexical else None,
        "fused": round(fused, 6),
    }


def _rrf(sides: dict[int, list[tuple[int, float] | None]]) -> dict[int, float]:
    return {cid: sum(1.0 / (RRF_K + pair[0]) for pair in both if pair is not None) for cid, both in sides.items()}


def _zscore(dense: Ranking, lexical: Ranking, sides: dict[int, list[tuple[int, float] | None]]) -> dict[int, float]:
    zd, floor_d = _standardise(dense)
    zl, floor_l = _standardise(lexical)
    alpha = 1.0 if not zl else 0.0 if not zd else ALPHA  # one side empty: the other decides alone
    return {cid: alpha * zd.get(cid, floor_d) + (1 - alpha) * zl.get(cid, floor_l) for cid in sides}


def _standardise(ranking: Ranking) -> tuple[dict[int, float], float]:
    """z-scores over the list, and the lowest of them (for chunks the side did not return)."""
    if not ranking:
        return {}, 0.0
    values = [s for _, s in ranking]
    mean = math.fsum(values) / len(values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    if sd <= 0:
        return {cid: 0.0 for cid, _ in ranking}, 0.0
    return {cid: (s - mean) / sd for cid, s in ranking}, (min(values) - mean) / sd


def feedback_query(
    query: np.ndarray, fused: Fused, document_of: dict[int, int], vectors: Callable[[list[int]], np.ndarray]
) -> np.ndarray:
    """Rocchio: the query moved towards the best passage of each of the top documents, renormalised."""
    chosen: list[int] = []
    seen: set[int] = set()
    for chunk_id, _, _ in fused:
        document = document_of.get(chunk_id)
        if document is None or document in seen:
            continue
        seen.add(document)
        chosen.append(chunk_id)
        if len(chosen) == FEEDBACK_DOCS:
            break
    if not chosen:
        return query
    moved = query + FEEDBACK_BETA * vectors(chosen).mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return (moved / norm).astype(np.float32) if norm > 0 else query
