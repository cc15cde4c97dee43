"""Token-aware chunking with the real model's tokenizer."""

from __future__ import annotations

import pytest

from ingest import (
    Block,
    ChunkingConfig,
    IngestConfigError,
    LoadedDocument,
    chunk_document,
    document_text,
    embedding_input,
)

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "


def doc(*blocks: Block, title: str = "A title") -> LoadedDocument:
    return LoadedDocument(path="doc.md", type="markdown", title=title, blocks=blocks)


def test_no_chunk_exceeds_the_model_input_with_its_context(embedder) -> None:  # type: ignore[no-untyped-def]
    long = Block(SENTENCE * 120)
    document = doc(Block("Setup", "heading", 1), long, Block("Use", "heading", 2), Block("word " * 900))
    chunks = chunk_document(document, embedder, ChunkingConfig())
    assert len(chunks) > 5
    for c in chunks:
        full = embedding_input(document.title, c.heading, c.text)
        assert embedder.count_tokens([full])[0] + 2 <= embedder.max_tokens
        assert embedder.count_tokens([c.text])[0] == c.tokens


def test_chunks_are_slices_of_the_document_text(embedder) -> None:  # type: ignore[no-untyped-def]
    document = doc(Block("Intro", "heading", 1), Block(SENTENCE * 40), Block("Second paragraph here."))
    text = document_text(document)
    for c in chunk_document(document, embedder, ChunkingConfig(max_tokens=64, overlap_tokens=8)):
        assert text[c.char_start : c.char_end] == c.text


def test_consecutive_chunks_overlap_when_cut_for_size(embedder) -> None:  # type: ignore[no-untyped-def]
    document = doc(Block(" ".join(f"Sentence number {i} talks about topic {i}." for i in range(200))))
    chunks = chunk_document(document, embedder, ChunkingConfig(max_tokens=64, overlap_tokens=16))
    for a, b in zip(chunks, chunks[1:]):
        assert b.char_start < a.char_end, "a size cut should overlap the next chunk"
        assert 0 < embedder.count_tokens([document_text(document)[b.char_start : a.char_end]])[0] <= 16


def test_no_overlap_means_disjoint_chunks(embedder) -> None:  # type: ignore[no-untyped-def]
    document = doc(Block(SENTENCE * 60))
    chunks = chunk_document(document, embedder, ChunkingConfig(max_tokens=64, overlap_tokens=0))
    for a, b in zip(chunks, chunks[1:]):
        assert b.char_start >= a.char_end


def test_headings_start_chunks_and_give_their_path(embedder) -> None:  # type: ignore[no-untyped-def]
    body = SENTENCE * 8
    document = doc(
        Block("Install", "heading", 1),
        Block(body),
        Block("Linux", "heading", 2),
        Block(body),
        Block("Usage", "heading", 1),
        Block(body),
    )
    chunks = chunk_document(document, embedder, ChunkingConfig())
    assert [c.heading for c in chunks] == ["Install", "Install > Linux", "Usage"]
    assert chunks[1].text.startswith("Linux")


def test_title_is_not_repeated_as_heading(embedder) -> None:  # type: ignore[no-untyped-def]
    body = Block(SENTENCE * 8)
    document = doc(Block("A title", "heading", 1), body, Block("Part", "heading", 2), body)
    assert [c.heading for c in chunk_document(document, embedder, ChunkingConfig())] == ["", "Part"]


def test_pdf_pages_are_kept_and_start_chunks(embedder) -> None:  # type: ignore[no-untyped-def]
    document = LoadedDocument("r.pdf", "pdf", "Report", tuple(Block(SENTENCE * 6, page=p) for p in (1, 2, 3)), pages=3)
    chunks = chunk_document(document, embedder, ChunkingConfig())
    assert [(c.page, c.page_end) for c in chunks] == [(1, 1), (2, 2), (3, 3)]


def test_small_sections_merge_instead_of_making_tiny_chunks(embedder) -> None:  # type: ignore[no-untyped-def]
    document = doc(Block("One", "heading", 2), Block("Tiny."), Block("Two", "heading", 2), Block("Also tiny."))
    chunks = chunk_document(document, embedder, ChunkingConfig())
    assert len(chunks) == 1 and chunks[0].page is None


def test_text_without_spaces_is_still_cut(embedder) -> None:  # type: ignore[no-untyped-def]
    document = doc(Block("文字" * 300))  # one token per character, no space to cut at
    chunks = chunk_document(document, embedder, ChunkingConfig(max_tokens=64, overlap_tokens=0))
    assert len(chunks) > 1
    assert all(c.tokens <= 64 for c in chunks)


def test_bad_settings_are_refused(embedder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IngestConfigError, match="input limit"):
        chunk_document(doc(Block("x")), embedder, ChunkingConfig(max_tokens=1024))
    with pytest.raises(IngestConfigError, match="overlap"):
        chunk_document(doc(Block("x")), embedder, ChunkingConfig(max_tokens=64, overlap_tokens=40))


def test_empty_document_gives_no_chunks(embedder) -> None:  # type: ignore[no-untyped-def]
    assert chunk_document(doc(), embedder, ChunkingConfig()) == []
