"""Token-aware chunking that follows a document's structure.

A chunk is a slice of the document's text (blocks joined by blank lines) whose
tokens, with the title/heading prefix the embedder sees, fit the model's input.
Cuts prefer, in order: a heading or a new PDF page, a paragraph end, a sentence
end, a word end. A chunk cut for size overlaps the next by about `overlap` tokens;
a chunk cut at a heading or page does not (a new section starts clean).
"""

from __future__ import annotations

from collections.abc import Iterator

from .embeddings import Embedder
from .errors import IngestConfigError
from .records import Chunk, ChunkingConfig, LoadedDocument
from .token_stream import PARAGRAPH, SECTION, SENTENCE, SEPARATOR, WORD, Token, TokenBuffer, block_offsets, tokens

_CONTEXT_CHARS = 160  # title/heading context kept short, so the passage keeps its room


def document_text(document: LoadedDocument) -> str:
    """The text chunk offsets refer to: the document's blocks joined by blank lines."""
    return SEPARATOR.join(block.text for block in document.blocks)


def embedding_input(title: str, heading: str, text: str) -> str:
    """What the embedder sees for a passage: its context (title, heading) and text."""
    context = title.strip()
    if heading and heading.strip().lower() != context.lower():
        context = f"{context} > {heading}" if context else heading
    context = context[:_CONTEXT_CHARS]
    return f"{context}\n{text}" if context else text


def chunk_document(document: LoadedDocument, embedder: Embedder, config: ChunkingConfig) -> list[Chunk]:
    """Cut a document into passages that fit `config.max_tokens` with their context prefix."""
    return list(iter_chunks(document, embedder, config))


def iter_chunks(document: LoadedDocument, embedder: Embedder, config: ChunkingConfig) -> Iterator[Chunk]:
    """The passages of `chunk_document`, one at a time: memory stays small however long the document."""
    check_chunking(embedder, config)
    return _cut(document, TokenBuffer(tokens(document, embedder)), embedder, config)


def check_chunking(embedder: Embedder, config: ChunkingConfig) -> None:
    """Raise `IngestConfigError` unless `config` suits the embedder."""
    if config.max_tokens > embedder.max_tokens:
        raise IngestConfigError(
            f"chunk size {config.max_tokens} is above the {embedder.max_tokens}-token input "
            f"limit of {embedder.name}; use --chunk-tokens {embedder.max_tokens} or less"
        )
    if config.max_tokens < 32:
        raise IngestConfigError("chunk size must be at least 32 tokens")
    if not 0 <= config.overlap_tokens < config.max_tokens // 2:
        raise IngestConfigError("chunk overlap must be at least 0 and below half the chunk size")


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


def _cut(document: LoadedDocument, tokens: TokenBuffer, embedder: Embedder, config: ChunkingConfig) -> Iterator[Chunk]:
    headings = _heading_paths(document)
    offsets = block_offsets(document)
    start = ordinal = 0
    prefix_cache: dict[str, int] = {}
    tokens.fill(1)
    while start < len(tokens):
        heading = headings[tokens[start].block]
        if heading not in prefix_cache:
            prefix = embedding_input(document.title, heading, "")
            prefix_cache[heading] = embedder.count_tokens([prefix])[0] if prefix else 0
        # Two special tokens ([CLS], [SEP]) and the context prefix share the model's input.
        budget = max(min(embedder.max_tokens - 2 - prefix_cache[heading], config.max_tokens), 8)
        tokens.fill(start + budget + 1)  # _choose_end looks one token past the budget
        end, structural = _choose_end(tokens, start, budget)
        yield _make_chunk(document, offsets, tokens[start], tokens[end - 1], end - start, headings, ordinal)
        ordinal += 1
        if end >= len(tokens):
            break
        start = end if structural else _overlap_start(tokens, start, end, config.overlap_tokens)
        tokens.drop_before(start)
        tokens.fill(start + 1)


def _choose_end(tokens: TokenBuffer, start: int, budget: int) -> tuple[int, bool]:
    """Where the chunk starting at `start` ends (exclusive), and whether it ends at a section."""
    limit = min(start + budget, len(tokens))
    breaks = tokens.breaks(start, limit + 1)  # breaks[i] is the break before token start + i
    min_fill = max(1, budget // 4)
    if SECTION in breaks[min_fill : limit - start]:
        return start + breaks.index(SECTION, min_fill, limit - start), True
    if limit == len(tokens):
        return limit, False
    floor = budget // 2
    for strength in (SECTION, PARAGRAPH, SENTENCE, WORD):
        for index in range(limit - start, floor, -1):
            if breaks[index] >= strength:
                return start + index, strength == SECTION
    for index in range(limit - start, 0, -1):
        if breaks[index] >= WORD:
            return start + index, False
    return limit, False  # one word longer than the budget: cut inside it


def _overlap_start(tokens: TokenBuffer, start: int, end: int, overlap: int) -> int:
    """Start of the next chunk: about `overlap` tokens back, at a sentence or word start."""
    if overlap <= 0:
        return end
    earliest = max(start + 1, end - overlap)
    breaks = tokens.breaks(earliest, end)
    for strength in (SENTENCE, WORD):
        for index, brk in enumerate(breaks):
            if brk >= strength:
                return earliest + index
    return end


def _make_chunk(
    document: LoadedDocument,
    offsets: list[int],
    first: Token,
    last: Token,
    count: int,
    headings: list[str],
    ordinal: int,
) -> Chunk:
    pages = [document.blocks[b].page for b in range(first.block, last.block + 1)]
    known = [p for p in pages if p is not None]
    return Chunk(
        ordinal=ordinal,
        text=_slice(document, offsets, first, last),
        char_start=first.start,
        char_end=last.end,
        tokens=count,
        page=known[0] if known else None,
        page_end=known[-1] if known else None,
        heading=headings[first.block],
    )


def _slice(document: LoadedDocument, offsets: list[int], first: Token, last: Token) -> str:
    """`document_text(document)[first.start : last.end]`, without joining the whole document."""
    parts = []
    for number in range(first.block, last.block + 1):
        begin = first.start - offsets[number] if number == first.block else 0
        end = last.end - offsets[number] if number == last.block else None
        parts.append(document.blocks[number].text[begin:end])
    return SEPARATOR.join(parts)
