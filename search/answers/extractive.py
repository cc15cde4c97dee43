"""Extractive answers: the sentences of the best passages that best answer the question.

Used when no chat model is configured. Nothing is generated: every sentence of the
answer is quoted from a passage and cited as [n], n being the passage's rank.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from indexes import StoredChunk
from ingest import Embedder
from search.lexical import query_terms
from search.retrieve import Hit

_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_MIN_WORDS, _MAX_CHARS = 4, 400
_OVERLAP_WEIGHT = 0.15


@dataclass(frozen=True)
class Citation:
    """A passage an answer relies on: [number] -> chunk, document, page and a short quote."""

    number: int
    stored: StoredChunk
    quote: str

    @property
    def path(self) -> str:
        return self.stored.path

    @property
    def page(self) -> int | None:
        return self.stored.chunk.page

    def as_dict(self) -> dict[str, object]:
        stored = self.stored
        return {
            "number": self.number,
            "chunk_id": stored.chunk_id,
            "document_id": stored.document_id,
            "path": stored.path,
            "title": stored.title,
            "page": stored.chunk.page,
            "quote": self.quote,
        }


@dataclass(frozen=True)
class Answer:
    """An answer to a question, its citations and the passages it came from."""

    question: str
    answer: str
    mode: str  # "extractive" or "chat"
    citations: tuple[Citation, ...] = ()
    results: tuple[Hit, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    model: str | None = None
    abstained: bool = False
    dropped_citations: tuple[int, ...] = ()
    usage: dict[str, float | int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.answer,
            "mode": self.mode,
            "model": self.model,
            "abstained": self.abstained,
            "citations": [c.as_dict() for c in self.citations],
            "dropped_citations": list(self.dropped_citations),
            "usage": self.usage,
            "results": [h.as_dict() for h in self.results],
            "notes": list(self.notes),
        }


_OFF_TOPIC = 0.5  # a sentence scoring under half the best one's score is not quoted


def extractive_answer(question: str, hits: Sequence[Hit], embedder: Embedder, *, sentences: int = 3) -> Answer:
    """Pick the `sentences` best sentences of the passages in `hits`, citing each."""
    candidates = [(number, s) for number, hit in enumerate(hits, 1) for s in split_sentences(hit.text)]
    note = "extractive answer: sentences quoted from the passages, no language model involved"
    if not candidates:
        return Answer(
            question,
            "The indexed documents have no passage that matches this question.",
            "extractive",
            results=tuple(hits),
            notes=(note,),
        )
    scores = _score(question, [s for _, s in candidates], embedder)
    floor = float(scores.max()) * _OFF_TOPIC
    chosen: list[tuple[int, str]] = []
    for position in np.argsort(-scores, kind="stable"):
        if chosen and scores[position] < floor:
            break  # the rest is about something else: an answer of one good sentence beats one padded with those
        number, sentence = candidates[int(position)]
        if not any(_similar(sentence, other) for _, other in chosen):
            chosen.append((number, sentence))
        if len(chosen) == sentences:
            break
    text = " ".join(f"{sentence} [{number}]" for number, sentence in chosen)
    cited = sorted({number for number, _ in chosen})
    citations = tuple(_citation(n, hits[n - 1], [s for m, s in chosen if m == n][0]) for n in cited)
    return Answer(question, text, "extractive", citations, tuple(hits), (note,))


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage worth quoting (a few words at least, not too long)."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):  # headings stand alone, not glued to sentences
        for sentence in _SENTENCE.split(" ".join(paragraph.split())):
            sentence = sentence.strip()
            if len(sentence.split()) >= _MIN_WORDS:
                out.append(sentence if len(sentence) <= _MAX_CHARS else sentence[: _MAX_CHARS - 1] + "…")
    return out


def _score(question: str, sentences: list[str], embedder: Embedder) -> np.ndarray:
    """Cosine of each sentence to the question, plus a little for shared query words."""
    query = embedder.embed_query(question)
    matrix = embedder.embed_documents(sentences)
    terms = set(query_terms(question))
    overlap = np.array([len(terms & set(query_terms(s))) / max(len(terms), 1) for s in sentences])
    return np.asarray(matrix @ query + _OVERLAP_WEIGHT * overlap)


def _similar(a: str, b: str) -> bool:
    wa, wb = set(a.lower().split()), set(b.lower().split())
    return len(wa & wb) / max(len(wa | wb), 1) > 0.7


def _citation(number: int, hit: Hit, quote: str) -> Citation:
    return Citation(number, hit.stored, quote)
