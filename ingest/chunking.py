"""Token-aware chunking that follows a document's structure.

A chunk is a slice of the document's text (blocks joined by blank lines) whose
tokens, with the title/heading prefix the embedder sees, fit the model's input.
Cuts prefer, in order: a heading or a new PDF page, a paragraph end, a sentence
end, a word end. A chunk cut for size overlaps the next by about `overlap` tokens;
a chunk cut at a heading or page does not (a new section starts clean).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .embeddings import Embedder
from .errors import IngestConfigError
from .records import Chunk, ChunkingConfig, LoadedDocument

_SENTENCE_END = re.compile(r"[.!?。][\"')\]]*\s+")
_CONTEXT_CHARS = 160  # title/heading context kept short, so the passage keeps its room
_SEPARATOR = "\n\n"

# Break strengths between tokens.
_WORD, _SENTENCE, _PARAGRAPH, _SECTION = 1, 2, 3, 4


@dataclass(frozen=True)
class _Token:
    start: int  # character span in the document text
    end: int
    brk: int  # strength of the break just before this token (0: inside a word)
    block: int


def document_text(document: LoadedDocument) -> str:
    """The text chunk offsets refer to: the document's blocks joined by blank lines."""
    return _SEPARATOR.join(block.text for block in document.blocks)


def embedding_input(title: str, heading: str, text: str) -> str:
    """What the embedder sees for a passage: its context (title, heading) and text."""
    context = title.strip()
    if heading and heading.strip().lower() != context.lower():
        context = f"{context} > {heading}" if context else heading
    context = context[:_CONTEXT_CHARS]
    return f"{context}\n{text}" if context else text


def chunk_document(document: LoadedDocument, embedder: Embedder, config: ChunkingConfig) -> list[Chunk]:
    """Cut a document into passages that fit `config.max_tokens` with their context prefix."""
    if config.max_tokens > embedder.max_tokens:
        raise IngestConfigError(
            f"chunk size {config.max_tokens} is above the {embedder.max_tokens}-token input "
            f"limit of {embedder.name}; use --chunk-tokens {embedder.max_tokens} or less"
        )
    if config.max_tokens < 32:
        raise IngestConfigError("chunk size must be at least 32 tokens")
    if not 0 <= config.overlap_tokens < config.max_tokens // 2:
        raise IngestConfigError("chunk overlap must be at least 0 and below half the chunk size")
    text = document_text(document)
    tokens = list(_tokens(document, embedder))
    headings = _heading_paths(document)
    return list(_cut(document, text, tokens, headings, embedder, config))


def _tokens(document: LoadedDocument, embedder: Embedder) -> Iterator[_Token]:
    offset = 0
    previous_page = None
    for number, block in enumerate(document.blocks):
        sentence_starts = {m.end() for m in _SENTENCE_END.finditer(block.text)}
        section = block.kind == "heading" or (block.page is not None and block.page != previous_page)
        previous_page = block.page
        last_end = -1
        for index, (start, end) in enumerate(embedder.token_spans(block.text)):
            if index == 0:
                brk = _SECTION if section else _PARAGRAPH
            elif start in sentence_starts:
                brk = _SENTENCE
            else:
                brk = _WORD if start > last_end else 0
            last_end = end
            yield _Token(offset + start, offset + end, brk, number)
        offset += len(block.text) + len(_SEPARATOR)


def _heading_paths(document: LoadedDocument) -> list[str]:
    """For each block, the path of headings it sits under ("Install > Linux")."""
    stack: list[tuple[int, str]] = []
    paths = []
    title = document.title.strip().lower()
    for block in document.blocks:
        if block.kind == "heading":
            stack = [(level, text) for level, text in stack if level < block.level]
            stack.append((block.level, block.text.strip()))
        # The title heads every passage already; repeating it as a heading adds nothing.
        paths.append(" > ".join(text for _, text in stack if text.lower() != title))
    return paths


def _cut(
    document: LoadedDocument,
    text: str,
    tokens: list[_Token],
    headings: list[str],
    embedder: Embedder,
    config: ChunkingConfig,
) -> Iterator[Chunk]:
    start = ordinal = 0
    prefix_cache: dict[str, int] = {}
    while start < len(tokens):
        heading = headings[tokens[start].block]
        if heading not in prefix_cache:
            prefix = embedding_input(document.title, heading, "")
            prefix_cache[heading] = embedder.count_tokens([prefix])[0] if prefix else 0
        # Two special tokens ([CLS], [SEP]) and the context prefix share the model's input.
        budget = min(embedder.max_tokens - 2 - prefix_cache[heading], config.max_tokens)
        end, structural = _choose_end(tokens, start, max(budget, 8))
        yield _make_chunk(document, text, tokens, headings, start, end, ordinal)
        ordinal += 1
        if end >= len(tokens):
            break
        start = end if structural else _overlap_start(tokens, start, end, config.overlap_tokens)


def _choose_end(tokens: list[_Token], start: int, budget: int) -> tuple[int, bool]:
    """Where the chunk starting at `start` ends (exclusive), and whether it ends at a section."""
    limit = min(start + budget, len(tokens))
    min_fill = start + max(1, budget // 4)
    for index in range(min_fill, limit):
        if tokens[index].brk == _SECTION:
            return index, True
    if limit == len(tokens):
        return limit, False
    floor = start + budget // 2
    for strength in (_SECTION, _PARAGRAPH, _SENTENCE, _WORD):
        for index in range(limit, floor, -1):
            if tokens[index].brk >= strength:
                return index, strength == _SECTION
    for index in range(limit, start, -1):
        if tokens[index].brk >= _WORD:
            return index, False
    return limit, False  # one word longer than the budget: cut inside it


def _overlap_start(tokens: list[_Token], start: int, end: int, overlap: int) -> int:
    """Start of the next chunk: about `overlap` tokens back, at a sentence or word start."""
    if overlap <= 0:
        return end
    earliest = max(start + 1, end - overlap)
    for strength in (_SENTENCE, _WORD):
        for index in range(earliest, end):
            if tokens[index].brk >= strength:
                return index
    return end


def _make_chunk(
    document: LoadedDocument,
    text: str,
    tokens: list[_Token],
    headings: list[str],
    start: int,
    end: int,
    ordinal: int,
) -> Chunk:
    first, last = tokens[start], tokens[end - 1]
    pages = [document.blocks[b].page for b in range(first.block, last.block + 1)]
    known = [p for p in pages if p is not None]
    return Chunk(
        ordinal=ordinal,
        text=text[first.start : last.end],
        char_start=first.start,
        char_end=last.end,
        tokens=end - start,
        page=known[0] if known else None,
        page_end=known[-1] if known else None,
        heading=headings[first.block],
    )
