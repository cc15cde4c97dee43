"""`hash/bow-384`: a fast, deterministic fake embedder for benchmarks and tests, not for search quality.

A text's vector is the normalised sum of its words' pseudo-random unit vectors (a hashed bag
of words), so texts that share words get similar vectors and a benchmark measures the
pipeline, not a model. No network and no model files; tokens are whitespace-separated words.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

MODEL_NAME = "hash/bow-384"
DIMENSION = 384
MAX_TOKENS = 512  # words; the pipeline's default passage size
_SPAN = re.compile(r"\S+")
_BUCKETS = 1 << 16


def _random_bytes(label: str, size: int) -> bytes:
    """Fixed pseudo-random bytes (SHAKE-256 of a label): the same in every process and numpy version."""
    return hashlib.shake_256(f"semsearch {MODEL_NAME} {label}".encode()).digest(size)


# A word's unit vector has 8 coordinates of +-1/sqrt(8), drawn from two tables by the two halves of
# its 32-bit hash (two words share all 8 only if both halves collide); a slot of 384 or more is -1.
# Sparse random projections: dot products of two words' vectors spread like those of dense Gaussian ones.
_SLOTS = [
    (np.frombuffer(_random_bytes(f"slots{i}", _BUCKETS * 8), dtype="<u2") % (2 * DIMENSION))
    .astype(np.int16)
    .view(np.int64)  # the 4 slots of a bucket as one 8-byte item: one gather per word
    for i in (1, 2)
]
# A word's hash sums a random number per pair of adjacent bytes, from the boundary before it to the one after.
_PAIRS = np.frombuffer(_random_bytes("pairs", _BUCKETS * 4), dtype="<u4").copy()
_PAIRS[0] = 0  # (boundary, boundary): between words
# Bytes of words: ASCII letters (folded to lower case), digits, '_', and every byte of a non-ASCII character.
_WORD_BYTES = np.array(
    [c if chr(c).isalnum() or c == 95 else 0 for c in range(128)] + list(range(128, 256)), dtype=np.uint8
)
_WORD_BYTES[65:91] += 32


class HashEmbedder:
    """Hashed bag-of-words vectors, 384 dims, normalised float32: for benchmarks and tests, not quality."""

    name: str = MODEL_NAME
    dimension: int = DIMENSION
    max_tokens: int = MAX_TOKENS

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the whitespace-separated words of `text`."""
        return [m.span() for m in _SPAN.finditer(text)]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Whitespace-separated words in each text."""
        return [len(text.split()) for text in texts]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of shape (len(texts), 384): each text's word vectors summed, then normalised."""
        encoded = [text.lower().encode() for text in texts]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)) + 1
        text_starts = np.cumsum(lengths) - lengths + 1  # where each text starts in `data` below
        data = _WORD_BYTES.take(np.frombuffer(b"\n" + b"\n".join(encoded) + b"\n", dtype=np.uint8))
        pairs = data[:-1].astype(np.uint16)
        pairs <<= 8
        pairs |= data[1:]
        starts = np.flatnonzero((data[:-1] == 0) & (data[1:] != 0))  # the pair (boundary, first byte) of each word
        hashes = _mix(np.add.reduceat(_PAIRS.take(pairs), starts, dtype=np.uint32) if len(starts) else starts)
        rows = np.searchsorted(text_starts, starts + 1, side="right") - 1
        halves = (_SLOTS[0].take(hashes & 0xFFFF), _SLOTS[1].take(hashes >> 16))
        slots = np.stack(halves, axis=1).view(np.int16).astype(np.int64)
        slots += rows[:, None] * (2 * DIMENSION)
        counts = np.bincount(slots.ravel(), minlength=len(texts) * 2 * DIMENSION).reshape(len(texts), 2, DIMENSION)
        vectors = (counts[:, 0] - counts[:, 1]).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)  # a text without words stays all zeros
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """Vector of shape (384,) for one query."""
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def describe(self) -> dict[str, object]:
        """What the index manifest records about this embedder."""
        return {"provider": "hash", "model": MODEL_NAME.partition("/")[2], "dimension": DIMENSION}

    def usage(self) -> dict[str, float | int]:
        """Nothing to report: no requests are made."""
        return {}

    def close(self) -> None:
        """Nothing to release."""


def _mix(hashes: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser: every input bit moves every output bit."""
    hashes = hashes.astype(np.uint32)
    hashes ^= hashes >> 16
    hashes *= np.uint32(0x85EBCA6B)
    hashes ^= hashes >> 13
    hashes *= np.uint32(0xC2B2AE35)
    hashes ^= hashes >> 16
    return hashes
