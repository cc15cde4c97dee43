"""Words as the lexical index sees them, and snippets that mark them.

A word is a run of Unicode letters and digits, lower-cased, accents folded ("café" is
"cafe") and cut to its Porter stem ("rivers" is "river"): what FTS5's `porter unicode61
remove_diacritics 2` tokenizer did, so lexical ranking is what it was (tantivy's own
stemmer, Snowball English, ranked SciFact lower). Stemming runs here, in C (PyStemmer), and
tantivy indexes the stems split on spaces.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import cast

import Stemmer

_WORD = re.compile(r"[^\W_]+")
_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")  # combining accents
_LONGEST = 64  # longer "words" (base64, hashes) are not indexed
_CACHE = 200_000  # words whose stems are remembered (shared by threads: dict operations are atomic)
_SNIPPET_WORDS = 32  # as FTS5's snippet() was asked for
_local = threading.local()
_STEMS: dict[str, str] = {}


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:  # a Stemmer is not safe to share between threads
        stemmer = _local.stemmer = Stemmer.Stemmer("porter", 0)
    return stemmer


def _fold(text: str) -> str:
    text = text.lower()
    return text if text.isascii() else _MARKS.sub("", unicodedata.normalize("NFKD", text))


def stems(text: str) -> list[str]:
    """The stems of a text's words, in order."""
    return _stemmed([w for w in _WORD.findall(_fold(text)) if len(w) <= _LONGEST])


def _stemmed(found: list[str]) -> list[str]:
    """The stems of folded words."""
    known = list(map(_STEMS.get, found))  # a dict look-up is ~3x cheaper than PyStemmer's own cache
    if None in known:
        if len(_STEMS) > _CACHE:
            _STEMS.clear()
        new = list(dict.fromkeys(w for w, s in zip(found, known) if s is None))
        _STEMS.update(zip(new, _stemmer().stemWords(new)))
        known = [_STEMS.get(w) or _stem(w) for w in found]
    return cast(list[str], known)


def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))  # a word the cache lost to another thread's clear()


def indexed(text: str) -> str:
    """A text as tantivy indexes it: its stems, separated by spaces."""
    return " ".join(stems(text))


def query_words(terms: Iterable[str]) -> list[str]:
    """The distinct stems of query words (one word may give several, or none)."""
    return list(dict.fromkeys(s for term in terms for s in stems(term)))


def snippet(text: str, words: set[str]) -> str | None:
    """The stretch of `text` of 32 words that holds the most of `words`, with them in <mark> tags; None if none."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    if text.isascii():  # lower-casing keeps the offsets: fold once
        lowered = text.lower()
        stemmed = _stemmed([lowered[a:b] for a, b in spans])
    else:
        stemmed = _stemmed([_fold(text[a:b]) for a, b in spans])
    hits = [i for i, s in enumerate(stemmed) if s in words]
    if not hits:
        return None
    first, last = _best_window(hits, stemmed, len(spans))
    out, at = ["…" if first > 0 else ""], spans[first][0]
    for i in (h for h in hits if first <= h <= last):
        out += [text[at : spans[i][0]], "<mark>", text[spans[i][0] : spans[i][1]], "</mark>"]
        at = spans[i][1]
    out += [text[at : spans[last][1]], "…" if last < len(spans) - 1 else ""]
    return " ".join("".join(out).split())


def _best_window(hits: list[int], stemmed: list[str], total: int) -> tuple[int, int]:
    """First and last word of the window with the most distinct hit words (then the most hits), hits centred."""
    best: tuple[int, int, int] = (-1, -1, 0)
    for start in hits:
        inside = [h for h in hits if start <= h < start + _SNIPPET_WORDS]
        score = (len({stemmed[h] for h in inside}), len(inside))
        if score > best[:2]:
            best = (*score, start)
    inside = [h for h in hits if best[2] <= h < best[2] + _SNIPPET_WORDS]
    spare = _SNIPPET_WORDS - (inside[-1] - inside[0] + 1)
    first = max(0, min(inside[0] - spare // 2, total - _SNIPPET_WORDS))
    return first, min(total, first + _SNIPPET_WORDS) - 1
