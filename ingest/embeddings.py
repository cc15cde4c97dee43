"""The embedder interface shared by ingest (passages) and search (queries)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

T = TypeVar("T")


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (inner product = cosine)."""

    name: str  # "provider/model", e.g. "local/all-MiniLM-L6-v2"
    dimension: int
    max_tokens: int  # longest input the model takes, special tokens included

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the model's tokens in `text` (special tokens excluded)."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Number of tokens of each text as the model sees it, special tokens excluded."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for passages, shape (len(texts), dimension)."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for one query, shape (dimension,)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the index manifest records so queries are embedded the same way later."""
        ...

    def usage(self) -> dict[str, float | int]:
        """Requests, retries, rate limiting and tokens so far (empty for in-process models)."""
        ...

    def close(self) -> None:
        """Release connections (a no-op for in-process models)."""
        ...


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Cut any iterable into lists of at most `size` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
