"""A document's tokens as a stream, so chunking a large file never holds them all.

Each token carries its character span in the document text (blocks joined by blank
lines), its block and the strength of the break before it. A long block is tokenized
window by window, cut at a space between two letters or digits: no tokenizer we use
(WordPiece, tiktoken's BPE) lets a token cross such a space, so the tokens are the ones
the whole block gives. The chunker reads the stream through a `TokenBuffer`, which keeps
only the tokens between the current chunk's start and its furthest possible end.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import NamedTuple

from .embeddings import Embedder
from .records import LoadedDocument

SEPARATOR = "\n\n"
SENTENCE_END = re.compile(r"[.!?。][\"')\]]*\s+")
WINDOW_CHARS = 200_000  # a block longer than this is tokenized a window at a time (~40k tokens, a few MB)

# Break strengths between tokens.
WORD, SENTENCE, PARAGRAPH, SECTION = 1, 2, 3, 4


class Token(NamedTuple):
    """One token: its character span in the document text, its block, the break before it (0: inside a word)."""

    start: int
    end: int
    brk: int
    block: int


def block_offsets(document: LoadedDocument) -> list[int]:
    """Where each block starts in the document text."""
    offsets, offset = [], 0
    for block in document.blocks:
        offsets.append(offset)
        offset += len(block.text) + len(SEPARATOR)
    return offsets


class Window(NamedTuple):
    """Consecutive tokens of one block: their character spans in the document text and the break before each."""

    starts: list[int]
    ends: list[int]
    breaks: list[int]
    block: int


def tokens(document: LoadedDocument, embedder: Embedder) -> Iterator[Window]:
    """Every token of the document, in order, with the break before it: a window of a block at a time."""
    previous_page = None
    for number, (block, offset) in enumerate(zip(document.blocks, block_offsets(document))):
        section = block.kind == "heading" or (block.page is not None and block.page != previous_page)
        previous_page = block.page
        yield from _block_tokens(block.text, offset, number, SECTION if section else PARAGRAPH, embedder)


def _block_tokens(text: str, offset: int, number: int, first_break: int, embedder: Embedder) -> Iterator[Window]:
    # Columns of plain ints built by comprehensions, not an object per token: the per-token
    # work was most of the chunker's time.
    sentence_starts = (offset + m.end() for m in SENTENCE_END.finditer(text))  # increasing
    pending = next(sentence_starts, -1)
    last_end = -1
    for begin, spans in _windows(text, embedder):
        if not spans:
            continue
        shift = offset + begin
        starts = [shift + start for start, _ in spans]
        ends = [shift + end for _, end in spans]
        sentences = set()
        while 0 <= pending <= starts[-1]:
            sentences.add(pending)
            pending = next(sentence_starts, -1)
        previous = [last_end, *ends[:-1]]
        breaks = [SENTENCE if s in sentences else WORD if s > p else 0 for s, p in zip(starts, previous)]
        if last_end < 0:  # the block's first token
            breaks[0] = first_break
        last_end = ends[-1]
        yield Window(starts, ends, breaks, number)


def _windows(text: str, embedder: Embedder) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    """Token spans of a block, a window at a time: the window's start and its spans within it."""
    begin = 0
    while begin < len(text):
        end = _window_end(text, begin)
        yield begin, embedder.token_spans(text[begin:end])
        begin = end


def _window_end(text: str, begin: int) -> int:
    """The end of the window starting at `begin`: a safe cut before `WINDOW_CHARS`, else a forced one."""
    limit = begin + WINDOW_CHARS
    if limit >= len(text):
        return len(text)
    floor = begin + WINDOW_CHARS // 2
    cut = text.rfind(" ", floor, limit)
    while cut > floor:
        if text[cut - 1].isalnum() and text[cut + 1].isalnum():
            return cut
        cut = text.rfind(" ", floor, cut)
    # No such space (text without spaces): cut anyway, at whitespace if any, never before a combining mark.
    cut = max(text.rfind(" ", floor, limit), text.rfind("\n", floor, limit))
    if cut <= floor:
        cut = limit
    while cut > floor and unicodedata.category(text[cut]).startswith("M"):
        cut -= 1
    return cut


class TokenBuffer:
    """The token stream with random access to the tokens not yet dropped (indexes count from the first token)."""

    def __init__(self, stream: Iterator[Window]) -> None:
        self._stream = stream
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._breaks: list[int] = []
        self._blocks: list[int] = []
        self._base = 0  # index of the first token kept
        self._exhausted = False

    def __len__(self) -> int:
        """Tokens read so far (the total, once the stream is exhausted)."""
        return self._base + len(self._starts)

    def __getitem__(self, index: int) -> Token:
        at = index - self._base
        return Token(self._starts[at], self._ends[at], self._breaks[at], self._blocks[at])

    def breaks(self, start: int, stop: int) -> list[int]:
        """The breaks before tokens `start` to `stop` (exclusive; fewer if the stream ends first)."""
        return self._breaks[start - self._base : stop - self._base]

    def fill(self, count: int) -> None:
        """Read windows until `count` tokens are known or the stream ends."""
        while not self._exhausted and len(self) < count:
            window = next(self._stream, None)
            if window is None:
                self._exhausted = True
                break
            self._starts += window.starts
            self._ends += window.ends
            self._breaks += window.breaks
            self._blocks += [window.block] * len(window.starts)

    def drop_before(self, index: int) -> None:
        """Forget the tokens before `index`; they will not be read again."""
        dead = index - self._base
        if dead > 0 and 2 * dead >= len(self._starts):  # deleting a list's head moves its tail: do it rarely
            for column in (self._starts, self._ends, self._breaks, self._blocks):
                del column[:dead]
            self._base = index
