"""Embeddings through any OpenAI-compatible `/v1/embeddings` endpoint.

Inputs are packed into requests by count (2,048) and by tokens (300,000), sent
several at a time under the rate limiter, and every reply is checked: one vector
per input, in `index` order, of the expected size. Vectors are asked for as base64
(a quarter of the JSON to parse) and as floats from servers that refuse base64.
"""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from .errors import EmbeddingError, UpstreamError, UpstreamRejected
from .openai_client import MalformedResponse, OpenAIClient
from .openai_models import MAX_INPUTS_PER_REQUEST, MAX_TOKENS_PER_REQUEST
from .tokenizer import TokenCounter

_MIN_REQUEST_INPUTS = 16  # below this, splitting a call for concurrency costs more than it gains


class OpenAIEmbedder:
    """An `Embedder` over HTTP; thread-safe."""

    def __init__(
        self,
        model: str,
        client: OpenAIClient,
        counter: TokenCounter,
        *,
        dimension: int,
        max_tokens: int,
        request_dimensions: int | None = None,
        concurrency: int = 4,
        base64_vectors: bool = True,
        tokenizer_name: str = "",
    ) -> None:
        self.model, self.client, self.counter = model, client, counter
        self.name = f"openai/{model}"
        self.dimension, self.max_tokens = dimension, max_tokens
        self.request_dimensions, self.concurrency = request_dimensions, max(1, concurrency)
        self.tokenizer_name = tokenizer_name
        self._base64 = base64_vectors
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        """What the index manifest records to embed queries the same way later (never the key)."""
        return {
            "provider": "openai",
            "model": self.model,
            "base_url": self.client.base_url,
            "dimensions": self.request_dimensions,
            "dimension": self.dimension,
            "max_tokens": self.max_tokens,
            "tokenizer": self.tokenizer_name,
        }

    def usage(self) -> dict[str, float | int]:
        """Requests sent, retries, 429s, tokens billed and tokens per minute so far."""
        return self.client.stats.as_dict()

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.counter.token_spans(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.counter.count_tokens(texts)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts`; empty texts get zero vectors and are never sent."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        counts = self.count_tokens(texts)
        for position, count in enumerate(counts):
            if count > self.max_tokens:
                raise EmbeddingError(
                    f"input {position} has {count} tokens; {self.name} takes at most {self.max_tokens}: "
                    "ingest with a smaller --chunk-tokens"
                )
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        requests = self._pack(wanted, counts)
        done: dict[int, np.ndarray] = {}
        try:
            self._send_all(requests, texts, counts, done)
        except UpstreamError as exc:
            exc.partial = dict(done)  # the pipeline keeps what was embedded before the failure
            raise
        for position, vector in done.items():
            out[position] = vector
        return out

    def _pack(self, positions: list[int], counts: list[int]) -> list[list[int]]:
        """Requests of at most 2,048 inputs and 300,000 tokens, split so that several fly at once."""
        _, tpm = self.client.limiter.limits
        token_cap = min(MAX_TOKENS_PER_REQUEST, int(tpm * 0.9)) if tpm else MAX_TOKENS_PER_REQUEST
        size_cap = min(MAX_INPUTS_PER_REQUEST, max(_MIN_REQUEST_INPUTS, math.ceil(len(positions) / self.concurrency)))
        requests: list[list[int]] = []
        current: list[int] = []
        tokens = 0
        for position in positions:
            if current and (len(current) >= size_cap or tokens + counts[position] > token_cap):
                requests.append(current)
                current, tokens = [], 0
            current.append(position)
            tokens += counts[position]
        if current:
            requests.append(current)
        return requests

    def _send_all(
        self, requests: list[list[int]], texts: Sequence[str], counts: list[int], done: dict[int, np.ndarray]
    ) -> None:
        if len(requests) <= 1 or self.concurrency == 1:
            for request in requests:
                done.update(self._send(request, texts, counts))
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures = [pool.submit(self._send, request, texts, counts) for request in requests]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.cancel()  # after a failure, start nothing new...
            wait(futures)  # ...but keep what requests already in flight bring back
        errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
        for future in futures:
            if not future.cancelled() and future.exception() is None:
                done.update(future.result())
        if errors:
            raise errors[0]  # type: ignore[misc]

    def _send(self, positions: list[int], texts: Sequence[str], counts: list[int]) -> dict[int, np.ndarray]:
        inputs = [texts[i] for i in positions]
        tokens = sum(counts[i] for i in positions)
        asked_base64 = self._base64
        try:
            vectors = self._request(inputs, tokens, base64_vectors=asked_base64)
        except UpstreamRejected as exc:
            if not (asked_base64 and _refuses_base64(exc)):
                raise
            with self._lock:
                self._base64 = False  # this server wants floats; ask for floats from now on
            vectors = self._request(inputs, tokens, base64_vectors=False)
        return dict(zip(positions, vectors))

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def _request(self, inputs: list[str], tokens: int, *, base64_vectors: bool) -> list[np.ndarray]:
        body: dict[str, Any] = {
            "model": self.model,
            "input": inputs,
            "encoding_format": "base64" if base64_vectors else "float",
        }
        if self.request_dimensions:
            body["dimensions"] = self.request_dimensions

        def parse(reply: dict[str, Any]) -> list[np.ndarray]:
            vectors = self.parse_vectors(reply, len(inputs))
            usage = reply.get("usage") or {}
            self.client.stats.add(tokens=int(usage.get("total_tokens") or usage.get("prompt_tokens") or tokens))
            return vectors

        return self.client.post("/embeddings", body, tokens=tokens, parse=parse)

    def parse_vectors(self, reply: dict[str, Any], expected: int) -> list[np.ndarray]:
        """A `/v1/embeddings` reply's vectors in input order, checked for count, order and size (normalised)."""
        data = reply["data"]
        if not isinstance(data, list) or len(data) != expected:
            raise MalformedResponse(f"{len(data) if isinstance(data, list) else 'no'} vectors for {expected} inputs")
        by_index: dict[int, np.ndarray] = {}
        for item in data:
            index = int(item["index"])
            if not 0 <= index < expected or index in by_index:
                raise MalformedResponse(f"bad or repeated index {index}")
            vector = _decode(item["embedding"])
            if vector.shape != (self.dimension,) or not np.all(np.isfinite(vector)):
                raise MalformedResponse(f"a vector of {vector.shape[0]} values where {self.dimension} were expected")
            norm = float(np.linalg.norm(vector))
            by_index[index] = vector / norm if norm > 0 else vector
        return [by_index[i] for i in range(expected)]


def _refuses_base64(error: UpstreamRejected) -> bool:
    """A 400 that blames the encoding format: the server only sends floats."""
    text = str(error).lower()
    return error.status == 400 and ("base64" in text or "encoding_format" in text)


def _decode(embedding: Any) -> np.ndarray:
    """A vector sent as base64 little-endian float32, or as a JSON list of numbers."""
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float32)
    if isinstance(embedding, list):
        return np.asarray(embedding, dtype=np.float32)
    raise MalformedResponse(f"an embedding of type {type(embedding).__name__}")
