"""When an answer abstains: no passage reaches the relevance floor (one rule for written and extractive answers)."""

from __future__ import annotations

from collections.abc import Sequence

from search.retrieve import Hit

from .extractive import Answer
from .prompts import NOT_COVERED


def abstention(
    question: str, hits: Sequence[Hit], min_score: float, *, mode: str, model: str | None = None, aside: str = ""
) -> Answer | None:
    """The "not covered" answer when no passage's score reaches `min_score` (None: go on and answer)."""
    best = max((hit.score for hit in hits), default=None)
    if best is not None and best >= min_score:
        return None
    note = f"no passage scored above the floor of {min_score}{aside}"
    return Answer(question, NOT_COVERED, mode, results=tuple(hits), notes=(note,), model=model, abstained=True)
