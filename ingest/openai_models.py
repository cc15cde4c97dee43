"""What we know of OpenAI's embedding models: sizes, limits, prices, rate-limit tiers.

Figures from ../shared/reference/openai-api.md and OpenAI's published model pages;
every one is a default a user can override by flag or environment, never a constant
the code depends on.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INPUTS_PER_REQUEST = 2048
MAX_TOKENS_PER_REQUEST = 300_000
MAX_TOKENS_PER_INPUT = 8191
DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class EmbeddingModelInfo:
    """A known embedding model: vector size, input limit, tokenizer, US$ per 1M tokens."""

    dimension: int
    max_tokens: int
    encoding: str
    price: float
    batch_price: float
    flexible_dimensions: bool  # accepts the `dimensions` parameter


KNOWN_EMBEDDING_MODELS = {
    "text-embedding-3-small": EmbeddingModelInfo(1536, MAX_TOKENS_PER_INPUT, "cl100k_base", 0.020, 0.010, True),
    "text-embedding-3-large": EmbeddingModelInfo(3072, MAX_TOKENS_PER_INPUT, "cl100k_base", 0.130, 0.065, True),
    "text-embedding-ada-002": EmbeddingModelInfo(1536, MAX_TOKENS_PER_INPUT, "cl100k_base", 0.100, 0.050, False),
}

# Requests and tokens per minute for the embedding models by usage tier, as OpenAI
# publishes them for text-embedding-3-small; `--rpm`/`--tpm` override, and the
# x-ratelimit-* headers of the server's replies adjust them at run time.
TIER_LIMITS: dict[str, tuple[int, int]] = {
    "free": (100, 40_000),
    "1": (3_000, 1_000_000),
    "2": (5_000, 1_000_000),
    "3": (5_000, 5_000_000),
    "4": (10_000, 5_000_000),
    "5": (10_000, 10_000_000),
}


def price_of(model: str, tokens: int, *, batch: bool = False) -> float | None:
    """US dollars for embedding `tokens` with `model`, None when its price is unknown."""
    info = KNOWN_EMBEDDING_MODELS.get(model)
    if info is None:
        return None
    return tokens / 1_000_000 * (info.batch_price if batch else info.price)
