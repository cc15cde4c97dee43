"""What we know of OpenAI's chat models: context windows, tokenizers, prices.

Figures from ../shared/reference/openai-api.md; each is a default that a flag or
environment variable overrides (`--chat-context-window` for models not listed).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatModelInfo:
    """Context window (tokens), tokenizer, and US$ per 1M input and output tokens."""

    context_window: int
    encoding: str
    input_price: float | None
    output_price: float | None


KNOWN_CHAT_MODELS = {
    "gpt-4o": ChatModelInfo(128_000, "o200k_base", 5.00, 15.00),
    "gpt-4o-mini": ChatModelInfo(128_000, "o200k_base", 0.150, 0.600),
    "gpt-4-turbo": ChatModelInfo(128_000, "cl100k_base", None, None),
    "gpt-3.5-turbo": ChatModelInfo(16_000, "cl100k_base", None, None),
}
DEFAULT_CONTEXT_WINDOW = 8_192  # for models we do not know: small enough to fit most servers
DEFAULT_CHAT_MODEL = "openai/gpt-4o-mini"


def chat_model_info(model: str, context_window: int | None = None) -> ChatModelInfo:
    """The model's figures, with `context_window` overriding the known or default window."""
    known = KNOWN_CHAT_MODELS.get(model) or ChatModelInfo(DEFAULT_CONTEXT_WINDOW, "cl100k_base", None, None)
    if context_window:
        return ChatModelInfo(context_window, known.encoding, known.input_price, known.output_price)
    return known


def chat_price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """US dollars for one call, None when the model's price is unknown."""
    info = KNOWN_CHAT_MODELS.get(model)
    if info is None or info.input_price is None or info.output_price is None:
        return None
    return (prompt_tokens * info.input_price + completion_tokens * info.output_price) / 1_000_000
