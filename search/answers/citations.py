"""Resolving a reply's [n] markers to the passages they name, and checking them.

A marker naming a passage that was not provided is dropped from the text and
reported; each valid one becomes a citation with the chunk, document, page, and a
short quote: the passage sentence closest to the answer sentence that cites it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from search.lexical import query_terms
from search.retrieve import Hit

from .extractive import Citation, split_sentences

_MARKER = re.compile(r"\[(\s*\d+(?:\s*(?:,|-|–)\s*\d+)*\s*)\]")
_ANSWER_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?](?:\s*\[[^\]]*\])*|$)")
_QUOTE_CHARS = 240


def numbers_in(marker: str) -> list[int]:
    """The passage numbers of one marker's inside: "1", "1, 3", "2-4"."""
    out: list[int] = []
    for part in re.split(r"\s*,\s*", marker.strip()):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit() and int(bounds[1]) - int(bounds[0]) < 50:
            out.extend(range(int(bounds[0]), int(bounds[1]) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def resolve(text: str, passages: Sequence[Hit]) -> tuple[str, list[Citation], list[int]]:
    """The text with invalid markers removed, the citations, and the invalid numbers."""
    invalid: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        numbers = numbers_in(match.group(1))
        good = [n for n in numbers if 1 <= n <= len(passages)]
        invalid.extend(n for n in numbers if n not in good)
        return "".join(f"[{n}]" for n in dict.fromkeys(good))

    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", _MARKER.sub(keep_valid, text)).strip()
    return cleaned, _citations(cleaned, passages), sorted(set(invalid))


def _citations(text: str, passages: Sequence[Hit]) -> list[Citation]:
    """One citation per passage cited, in order of first citation."""
    context: dict[int, str] = {}
    for sentence in _ANSWER_SENTENCE.findall(text):
        for match in _MARKER.finditer(sentence):
            for number in numbers_in(match.group(1)):
                context.setdefault(number, sentence)
    return [_citation(n, passages[n - 1], context[n]) for n in context]


def _citation(number: int, hit: Hit, claim: str) -> Citation:
    return Citation(number, hit.stored, best_quote(hit.text, claim))


def best_quote(passage: str, claim: str) -> str:
    """The sentence of `passage` sharing most words with `claim`, trimmed."""
    sentences = split_sentences(passage) or [" ".join(passage.split())]
    words = set(query_terms(_MARKER.sub(" ", claim)))
    best = max(sentences, key=lambda s: len(words & set(query_terms(s))))
    return best if len(best) <= _QUOTE_CHARS else best[: _QUOTE_CHARS - 1] + "…"
