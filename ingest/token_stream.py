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


def tokens(document: LoadedDocument, embedder: Embedder) -> Iterator[list[Token]]:
    """Every token of the document, in order, with the break before it: a list per window of a block."""
    previous_page = None
    for number, (block, offset) in enumerate(zip(document.blocks, block_offsets(document))):
        section = block.kind == "heading" or (block.page is not None and block.page != previous_page)
        previous_page = block.page
        yield from _block_tokens(block.text, offset, number, SECTION if section else PARAGRAPH, embedder)


def _block_tokens(text: str, offset: int, number: int, first_break: int, embedder: Embedder) -> Iterator[list[Token]]:
    # A window's tokens are made in one loop, not passed up one by one through generators: the
    # per-token cost was a third of the chunker's time.
    sentence_starts = (m.end() for m in SENTENCE_END.finditer(text))  # increasing, read alongside the tokens
    next_sentence = next(sentence_starts, -1)
    last_end, brk = -1, first_break
    for begin, spans in _windows(text, embedder):
        window = []
        for start, end in spans:
            start, end = begin + start, begin + end
            while 0 <= next_sentence < start:
                next_sentence = next(sentence_starts, -1)
            if last_end >= 0:  # not the block's first token
                brk = SENTENCE if start == next_sentence else WORD if start > last_end else 0
            last_end = end
            window.append(Token(offset + start, offset + end, brk, number))
        yield window


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

    def __init__(self, stream: Iterator[list[Token]]) -> None:
        self._stream = stream
        self._tokens: list[Token] = []
        self._base = 0  # index of self._tokens[0]
        self._exhausted = False

    def __len__(self) -> int:
        """Tokens read so far (the total, once the stream is exhausted)."""
        return self._base + len(self._tokens)

    def __getitem__(self, index: int) -> Token:
        return self._tokens[index - self._base]

    def fill(self, count: int) -> None:
        """Read windows until `count` tokens are known or the stream ends."""
        while not self._exhausted and len(self) < count:
            window = next(self._stream, None)
            if window is None:
                self._exhausted = True
            else:
                self._tokens += window

    def drop_before(self, index: int) -> None:
        """Forget the tokens before `index`; they will not be read again."""
        dead = index - self._base
        if dead > 0 and 2 * dead >= len(self._tokens):  # deleting a list's head moves its tail: do it rarely
            del self._tokens[:dead]
            self._base = index
