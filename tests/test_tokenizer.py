"""Token spans and counts for OpenAI models (tiktoken encodings built from packaged files)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.tokenizer import TiktokenCounter

SAMPLES = [
    "",
    "a",
    "Photosynthesis turns light into chemical energy.",
    "héllo wörld, Ça va? Très bien.",
    "日本語のテキストです。",
    "😀 emoji 😀😀 and a combining e\u0301 accent",
    "tab\tnew\nline  spaces   ",
    "a lone \ud800 surrogate",
]


def _random_texts(count: int) -> list[str]:
    """Texts that mix ASCII, accents, CJK, emoji and combining marks: tokens that split characters."""
    rng = random.Random(7)
    alphabet = "abc é日😀\u0301 \n.!?,0123456789"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))) for _ in range(count)]


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_token_spans_are_the_character_offsets_tiktoken_gives(encoding: str) -> None:
    """tiktoken's offsets, except that a token's leading space is left out of its span."""
    counter = TiktokenCounter(encoding)
    tiktoken = counter._encoding
    texts = SAMPLES + _random_texts(500)
    for text in texts:
        tokens = tiktoken.encode_ordinary(text)
        starts = tiktoken.decode_with_offsets(tokens)[1] if tokens else []
        ends = [*starts[1:], len(text)]
        expected = [(s + 1 if s + 1 < e and text[s] == " " else s, e) for s, e in zip(starts, ends)]
        assert counter.token_spans(text) == expected, text
    assert counter.count_tokens(texts) == [len(counter.token_spans(t)) for t in texts]


def test_passages_cut_for_openai_models_end_at_word_boundaries(tmp_path: Path) -> None:
    from ingest import Block, ChunkingConfig, LoadedDocument, chunk_document, make_embedder
    from ingest.models import RemoteOptions

    embedder = make_embedder("openai/text-embedding-3-small", cache_dir=tmp_path, remote=RemoteOptions(api_key="k"))
    words = " ".join(f"word{n % 97}" for n in range(3000))
    document = LoadedDocument("w.txt", "text", "Words", (Block(words),))
    chunks = chunk_document(document, embedder, ChunkingConfig(64, 8))
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.text == chunk.text.strip() and all(w.startswith("word") for w in chunk.text.split()), chunk.text
    assert all(a.text.split()[-1] in b.text.split()[:12] for a, b in zip(chunks, chunks[1:])), "cuts overlap"


def test_token_spans_cover_the_text_in_order() -> None:
    text = SAMPLES[5] + " " + SAMPLES[4]
    spans = TiktokenCounter().token_spans(text)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[0] <= a[1] <= b[0] and text[a[1] : b[0]] in ("", " ") for a, b in zip(spans, spans[1:]))
    assert "".join(text[start:end] for start, end in spans) == text.replace(" ", "")  # each space a gap


def test_counts_stay_exact_when_the_same_texts_are_counted_again_past_the_kept_counts() -> None:
    counter = TiktokenCounter()
    texts = [f"passage {n} " + "word " * (n % 7) for n in range(10_000)]  # more than the counts kept
    expected = [len(counter._encoding.encode_ordinary(t)) for t in texts]
    assert counter.count_tokens(texts) == expected
    assert counter.count_tokens(texts[::-1]) == expected[::-1]
    fresh = ["passage 3 word word word", "a text not counted before"]
    assert counter.count_tokens(fresh) == [len(counter._encoding.encode_ordinary(t)) for t in fresh]
