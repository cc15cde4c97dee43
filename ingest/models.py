"""Choosing an embedder by name, `provider/model`, and rebuilding it from a manifest.

`local/all-MiniLM-L6-v2` runs in process. `openai/NAME` is any model behind an
OpenAI-compatible `/v1/embeddings` endpoint: OpenAI's own models are known by name
(size, input limit, price, tokenizer); any other name is taken as a compatible
server's model, whose vector size is learnt from one probe request. `hash/bow-384`
is a fast fake (hashed bag of words) for benchmarks and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .embeddings import Embedder
from .errors import IngestConfigError
from .hash_embedder import MODEL_NAME as HASH_MODEL
from .hash_embedder import HashEmbedder
from .openai_client import OpenAIClient
from .openai_models import DEFAULT_BASE_URL, KNOWN_EMBEDDING_MODELS, MAX_TOKENS_PER_INPUT, TIER_LIMITS
from .ratelimit import RateLimiter

DEFAULT_EMBEDDING_MODEL = "local/all-MiniLM-L6-v2"
LOCAL_MODELS = ("all-MiniLM-L6-v2",)
DEFAULT_REMOTE_MAX_TOKENS = 512
_MOVED_HINT = (
    "if the embedding server moved, point to it with --base-url or OPENAI_BASE_URL "
    "(any server of openai/{model} will do: the index records the model, not the address)"
)


@dataclass(frozen=True)
class RemoteOptions:
    """How to reach and pace an OpenAI-compatible server (the key never reaches a manifest)."""

    base_url: str | None = None
    api_key: str | None = None
    dimensions: int | None = None
    tier: str | None = None
    rpm: float | None = None
    tpm: float | None = None
    concurrency: int = 4
    timeout: float = 60.0
    max_retries: int = 6
    backoff: float = 0.5
    max_tokens: int | None = None
    rate_period: float = 60.0  # seconds the RPM/TPM limits count over (shorter only in tests)

    def limiter(self) -> RateLimiter:
        rpm, tpm = TIER_LIMITS[self.tier] if self.tier else (None, None)
        return RateLimiter(self.rpm or rpm, self.tpm or tpm, period=self.rate_period)


def make_embedder(name: str, *, cache_dir: Path, remote: RemoteOptions | None = None) -> Embedder:
    """The embedder called `name` ("local/all-MiniLM-L6-v2", "openai/text-embedding-3-small", ...)."""
    provider, _, model = name.partition("/")
    if provider == "local" and model in LOCAL_MODELS:
        from .local_model import LocalEmbedder  # onnxruntime loads only when needed

        return LocalEmbedder(cache_dir)
    if provider == "openai" and model:
        return _openai_embedder(model, remote or RemoteOptions(), recorded=None)
    if name == HASH_MODEL:
        return HashEmbedder()
    raise IngestConfigError(
        f"unknown embedding model {name!r}; use local/{LOCAL_MODELS[0]}, openai/text-embedding-3-small, "
        f"openai/NAME for a model served by an OpenAI-compatible server, or {HASH_MODEL} (a fake for benchmarks)"
    )


def embedder_for_index(
    recorded: dict[str, Any], name: str, *, cache_dir: Path, remote: RemoteOptions | None = None
) -> Embedder:
    """The embedder an index was built with, as its manifest records it (dimensions, tokenizer, base URL).

    The model name is what must match, not the address: a base URL given by flag or environment
    (`remote.base_url`) overrides the recorded one, so an index follows its server when it moves.
    """
    provider, _, model = name.partition("/")
    if provider != "openai":
        return make_embedder(name, cache_dir=cache_dir)
    options = remote or RemoteOptions()
    if not options.base_url and recorded.get("base_url"):
        options = replace(options, base_url=recorded["base_url"])
    return _openai_embedder(model, options, recorded=recorded)


def _openai_embedder(model: str, options: RemoteOptions, *, recorded: dict[str, Any] | None) -> Embedder:
    from .openai_embedder import OpenAIEmbedder

    known = KNOWN_EMBEDDING_MODELS.get(model)
    recorded = recorded or {}
    dimensions = options.dimensions or recorded.get("dimensions")
    if dimensions and known and not known.flexible_dimensions:
        raise IngestConfigError(f"{model} does not take a dimensions parameter; drop --dimensions")
    client = OpenAIClient(
        options.base_url or DEFAULT_BASE_URL,
        options.api_key,
        limiter=options.limiter(),
        timeout=options.timeout,
        max_retries=options.max_retries,
        backoff=options.backoff,
        unreachable_hint=_MOVED_HINT.format(model=model),
    )
    counter, tokenizer, max_tokens = _counter_for(model, known.encoding if known else None, options, recorded)
    embedder = OpenAIEmbedder(
        model,
        client,
        counter,
        dimension=dimensions or recorded.get("dimension") or (known.dimension if known else 0),
        max_tokens=max_tokens,
        request_dimensions=dimensions,
        concurrency=options.concurrency,
        tokenizer_name=tokenizer,
    )
    if not embedder.dimension:
        embedder.dimension = _probe_dimension(embedder)
    return embedder


def _counter_for(
    model: str, encoding: str | None, options: RemoteOptions, recorded: dict[str, Any]
) -> tuple[Any, str, int]:
    """The tokenizer to chunk with: the model's own where we have it, else OpenAI's cl100k_base."""
    tokenizer = str(recorded.get("tokenizer") or "")
    if tokenizer.startswith("local/") or (not tokenizer and model in LOCAL_MODELS):
        from .local_model import LocalTokenizer

        local = LocalTokenizer()
        return (
            local,
            f"local/{model if model in LOCAL_MODELS else LOCAL_MODELS[0]}",
            int(recorded.get("max_tokens") or local.max_tokens),
        )
    from .tokenizer import TiktokenCounter

    name = tokenizer or encoding or "cl100k_base"
    default_max = MAX_TOKENS_PER_INPUT if encoding else DEFAULT_REMOTE_MAX_TOKENS
    return TiktokenCounter(name), name, int(options.max_tokens or recorded.get("max_tokens") or default_max)


def _probe_dimension(embedder: Any) -> int:
    """Ask the server once for a vector to learn the model's size."""
    from .openai_client import MalformedResponse

    def parse(reply: dict[str, Any]) -> int:
        vector = reply["data"][0]["embedding"]
        if not isinstance(vector, list) or not vector:
            raise MalformedResponse("the probe reply has no float vector")
        return len(vector)

    body = {"model": embedder.model, "input": ["dimension probe"], "encoding_format": "float"}
    dimension: int = embedder.client.post("/embeddings", body, tokens=2, parse=parse)
    return dimension
