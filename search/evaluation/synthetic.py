"""A deterministic synthetic corpus for `bench-scale`: passages of 60-120 words, and queries drawn from them.

Words come from a Zipfian distribution over a pseudo-vocabulary mixed with common English
words (about 40% of the words of real English text are among its 100 commonest), or from the
word frequencies of a BEIR corpus. Text has topics, as real text does: a third of a passage's
words (content words only) come from the vocabulary of its topic (one per run of 4 passages), so
passages on one topic share words and their vectors cluster. The same seed and size give the
same corpus.
"""

from __future__ import annotations

import gzip
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest import Block, LoadedDocument

MIN_WORDS, MAX_WORDS = 60, 120
PASSAGES_PER_DOCUMENT = (2, 6)  # each document holds 2 to 6 passages, one page each
PSEUDO_WORDS = 50_000
ZIPF_EXPONENT = 1.07
COMMON_SHARE = 0.4
TOPICS, TOPIC_WORDS, TOPIC_SHARE = 1000, 300, 0.35  # topics, the words of each, their share of a passage
PASSAGES_PER_TOPIC_RUN = 4
COMMON_WORDS = (
    "the of and to a in is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there one all we their been has would when who will more no if out "
    "so said what up its about into than them can only other new some could time these two may then do "
    "first any my now such like our over man me even most made after also did many before must through "
    "back years where much your way well down should because each just those people how too little state "
    "good very make world still own see men work long get here between both life being under never day "
    "same another know while last might us great old year off come since against go came right used take "
    "three"
).split()
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


@dataclass(frozen=True)
class Vocabulary:
    """Words and the probability of each."""

    words: np.ndarray  # of str objects, commonest first
    probabilities: np.ndarray
    source: str  # "zipf" or the dataset's folder name
    first_content: int  # words before this one are function words, in no topic

    @classmethod
    def zipf(cls) -> Vocabulary:
        """Pseudo-words (1-4 syllables) with Zipfian frequencies, mixed with common English words."""
        rng = np.random.default_rng(7)
        syllables = np.array(_SYLLABLES, dtype=object)
        pseudo = {
            "".join(syllables[rng.integers(len(syllables), size=rng.integers(2, 5))]) for _ in range(PSEUDO_WORDS)
        }
        pseudo -= set(COMMON_WORDS)
        # Ranks go on after the common words' (Zipf-Mandelbrot), so the commonest pseudo-word is as rare
        # as a content word of real text (~0.07% of words), not a second "the".
        zipf = 1.0 / np.arange(len(COMMON_WORDS) + 1, len(COMMON_WORDS) + len(pseudo) + 1) ** ZIPF_EXPONENT
        common = 1.0 / np.arange(1, len(COMMON_WORDS) + 1)
        probabilities = np.concatenate((common / common.sum() * COMMON_SHARE, zipf / zipf.sum() * (1 - COMMON_SHARE)))
        ranked = rng.permutation(np.array(sorted(pseudo), dtype=object))  # frequency unrelated to spelling
        words = np.array([*COMMON_WORDS, *ranked], dtype=object)
        return cls(words, probabilities, "zipf", len(COMMON_WORDS))

    @classmethod
    def sampled_from(cls, dataset_dir: Path) -> Vocabulary:
        """The words of a BEIR corpus (corpus.jsonl or corpus.jsonl.gz) with their frequencies there."""
        counts: Counter[str] = Counter()
        for line in _corpus_lines(dataset_dir):
            record = json.loads(line)
            counts.update(f"{record.get('title', '')} {record.get('text', '')}".split())
        ordered = counts.most_common()
        frequencies = np.array([n for _, n in ordered], dtype=np.float64)
        words = np.array([w for w, _ in ordered], dtype=object)
        return cls(words, frequencies / frequencies.sum(), dataset_dir.name, min(len(COMMON_WORDS), len(words) // 2))

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """The numbers of `count` words drawn at random by their probabilities."""
        cumulative = np.cumsum(self.probabilities)
        picks = np.searchsorted(cumulative, rng.random(count) * cumulative[-1])
        numbers: np.ndarray = np.minimum(picks, len(self.words) - 1)
        return numbers

    def topic_words(self, rng: np.random.Generator) -> np.ndarray:
        """For each topic, the numbers of the words it favours (rows of `TOPIC_WORDS`), all content words."""
        weights = self.probabilities[self.first_content :] ** 0.5  # topics favour mid-frequency words too
        picks = rng.choice(len(weights), size=(TOPICS, TOPIC_WORDS), p=weights / weights.sum())
        return picks + self.first_content


def _corpus_lines(dataset_dir: Path) -> Iterator[str]:
    plain, packed = dataset_dir / "corpus.jsonl", dataset_dir / "corpus.jsonl.gz"
    if plain.is_file():
        with plain.open(encoding="utf-8") as file:
            yield from file
    elif packed.is_file():
        with gzip.open(packed, "rt", encoding="utf-8") as file:
            yield from file
    else:
        raise FileNotFoundError(f"{dataset_dir} has no corpus.jsonl or corpus.jsonl.gz")


def passages(vocabulary: Vocabulary, count: int, seed: int = 11) -> list[str]:
    """`count` passages of 60-120 words in sentences of 6-20 words."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MIN_WORDS, MAX_WORDS + 1, size=count)
    numbers = vocabulary.draw(rng, int(lengths.sum()))
    content_share = float(vocabulary.probabilities[vocabulary.first_content :].sum())
    _mix_topics(numbers, lengths, vocabulary, min(1.0, TOPIC_SHARE / content_share), rng)
    words = vocabulary.words[numbers]
    ends = np.cumsum(lengths)
    out = []
    for stop, length in zip(ends, lengths):
        chosen = list(words[stop - length : stop])
        cut = 0
        while cut < length:
            cut += int(rng.integers(6, 21))
            chosen[min(cut, length) - 1] += "."
        chosen[0] = chosen[0].capitalize()
        out.append(" ".join(chosen))
    return out


def _mix_topics(
    numbers: np.ndarray, lengths: np.ndarray, vocabulary: Vocabulary, share: float, rng: np.random.Generator
) -> None:
    """Replace `share` of the content words by words of their passage's topic (Zipfian within the topic)."""
    topics = vocabulary.topic_words(rng)
    runs = -(-len(lengths) // PASSAGES_PER_TOPIC_RUN)
    topic_of_passage = np.repeat(rng.integers(TOPICS, size=runs), PASSAGES_PER_TOPIC_RUN)[: len(lengths)]
    topic_of_word = np.repeat(topic_of_passage, lengths)
    chosen = np.flatnonzero((numbers >= vocabulary.first_content) & (rng.random(len(numbers)) < share))
    cumulative = np.cumsum(1.0 / np.arange(1, topics.shape[1] + 1))
    ranks = np.searchsorted(cumulative, rng.random(len(chosen)) * cumulative[-1])
    numbers[chosen] = topics[topic_of_word[chosen], np.minimum(ranks, topics.shape[1] - 1)]


def documents(texts: list[str], prefix: str, seed: int = 13, *, titled: bool = True) -> list[LoadedDocument]:
    """The passages grouped into documents of a few passages each, one page per passage (so one chunk each).

    Untitled, a passage's vector is its text's alone (the embedder sees a title before the text).
    """
    rng = np.random.default_rng(seed)
    out, start = [], 0
    for number in itertools.count():
        if start >= len(texts):
            break
        size = int(rng.integers(PASSAGES_PER_DOCUMENT[0], PASSAGES_PER_DOCUMENT[1] + 1))
        group = texts[start : start + size]
        start += size
        blocks = tuple(Block(text, page=page) for page, text in enumerate(group, 1))
        title = " ".join(group[0].split()[:5]).rstrip(".") if titled else ""
        out.append(LoadedDocument(f"{prefix}/{number:07d}.txt", "text", title, blocks, pages=len(group)))
    return out


def queries(texts: list[str], count: int, seed: int = 17) -> list[str]:
    """Queries of 2-5 consecutive words of a passage; one in four also carries common words ("the effect of ...")."""
    rng = np.random.default_rng(seed)
    out = []
    for number in range(count):
        words = texts[int(rng.integers(len(texts)))].replace(".", "").split()
        size = int(rng.integers(2, 6))
        start = int(rng.integers(0, len(words) - size + 1))
        query = " ".join(words[start : start + size])
        if number % 4 == 3:
            common = [COMMON_WORDS[int(i)] for i in rng.integers(0, 30, size=4)]
            query = f"{common[0]} {common[1]} {query} {common[2]} {common[3]}"
        out.append(query.lower())
    return out
