"""OpenAI-compatible `/v1/embeddings` and `/v1/models`, served from the local model.

Any tool that speaks the protocol (the official `openai` client, LangChain, our own
client) can embed with semsearch's in-process model. Request and reply shapes are
OpenAI's, floats or base64 (the `openai` Python client asks for base64 by default).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from ingest import DEFAULT_EMBEDDING_MODEL, Embedder

from ..bodies import RequestBody, valid_unicode
from ..error_shapes import openai_error
from ..schemas import ResponseBody, errors, returns

MODEL_ID = DEFAULT_EMBEDDING_MODEL.partition("/")[2]  # "all-MiniLM-L6-v2"
_ALIASES = {MODEL_ID, f"local/{MODEL_ID}", f"sentence-transformers/{MODEL_ID}"}
_MAX_INPUTS = 2048
_MODEL = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "semsearch"}


class EmbeddingsRequest(RequestBody):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class Model(ResponseBody):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(ResponseBody):
    object: Literal["list"]
    data: list[Model]


class Embedding(ResponseBody):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32 when asked for")


class EmbeddingUsage(ResponseBody):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(ResponseBody):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class OpenAIErrorBody(ResponseBody):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(ResponseBody):
    """An error in OpenAI's shape (what OpenAI clients expect from /v1)."""

    error: OpenAIErrorBody


class LocalModelHolder:
    """Loads the local model on first use (or takes one already loaded)."""

    def __init__(self, load: Callable[[], Embedder]) -> None:
        self._load = load
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    def get(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._load()
            return self._embedder


def openai_router(model: LocalModelHolder) -> APIRouter:
    """The `/v1` routes over the local model."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

    @router.get("/models", summary="Models this server embeds with", **returns(ModelList))
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [_MODEL]}

    @router.get(
        "/models/{model:path}",
        summary="The model this server embeds with (any of its names)",
        responses=errors(404, model=OpenAIError),
        **returns(Model),
    )
    def retrieve_model(model: str) -> Any:
        if model not in _ALIASES:
            return _no_model(model, param="model")
        return _MODEL

    @router.post(
        "/embeddings",
        summary="Embed texts with the local model (OpenAI's request and reply)",
        responses=errors(400, 404, model=OpenAIError),
        **returns(EmbeddingList),
    )
    def embeddings(body: EmbeddingsRequest) -> Any:
        problem = _check(body)
        if problem is not None:
            return problem
        texts = [body.input] if isinstance(body.input, str) else [str(t) for t in body.input]
        embedder = model.get()
        vectors = embedder.embed_documents(texts)
        tokens = sum(embedder.count_tokens(texts)) + 2 * len(texts)  # [CLS] and [SEP] are read too
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": MODEL_ID,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return router


def _check(body: EmbeddingsRequest) -> JSONResponse | None:
    """An OpenAI-style 4xx for what this server cannot do, else None."""
    if body.model not in _ALIASES:
        return _no_model(body.model, param="model")
    if body.dimensions is not None and body.dimensions != 384:
        return openai_error(
            400, f"{MODEL_ID} makes 384-dimensional vectors; drop `dimensions` or set it to 384.", param="dimensions"
        )
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        return openai_error(400, "'$.input' is invalid: give a string or a non-empty list of strings.", param="input")
    if not all(isinstance(t, str) for t in texts):
        return openai_error(400, "Token-id inputs are not supported here: send text.", param="input")
    if len(texts) > _MAX_INPUTS:
        return openai_error(400, f"At most {_MAX_INPUTS} inputs per request, not {len(texts)}.", param="input")
    if any(not t.strip() for t in texts):  # type: ignore[union-attr]
        return openai_error(400, "'$.input' is invalid: inputs must not be empty strings.", param="input")
    if not all(valid_unicode(t) for t in texts):  # type: ignore[arg-type]
        return openai_error(
            400, "'$.input' is invalid: inputs must be valid Unicode (no lone surrogates).", param="input"
        )
    return None


def _no_model(model: str, *, param: str | None) -> JSONResponse:
    return openai_error(
        404, f"The model `{model}` does not exist; this server has `{MODEL_ID}`.", code="model_not_found", param=param
    )


def _encode(vector: np.ndarray, encoding_format: str) -> str | list[float]:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
