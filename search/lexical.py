"""Turning free text into the words a lexical search looks for.

Users type anything: quotes, parentheses, `AND`, `NEAR`, `*`, `:`, `-`. The query is
cut into words, and `indexes` quotes each one, so none of it reaches the engine as
syntax. Any word may match (BM25 ranks documents with more and rarer words higher);
common English function words are dropped, since they cost time and rank nothing.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_TERMS = 64

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    """.split()
)


def query_terms(text: str) -> list[str]:
    """The distinct lower-cased words of a query, stop words removed (unless that leaves none)."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in STOP_WORDS] or words
    return list(dict.fromkeys(kept))[:_MAX_TERMS]
