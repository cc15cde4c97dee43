"""Choosing an embedder by name: `provider/model`."""

from __future__ import annotations

from pathlib import Path

from .embeddings import Embedder
from .errors import IngestConfigError

DEFAULT_EMBEDDING_MODEL = "local/all-MiniLM-L6-v2"
LOCAL_MODELS = ("all-MiniLM-L6-v2",)


def make_embedder(name: str, *, cache_dir: Path) -> Embedder:
    """The embedder called `name` ("local/all-MiniLM-L6-v2", ...)."""
    provider, _, model = name.partition("/")
    if provider == "local" and model in LOCAL_MODELS:
        from .local_model import LocalEmbedder  # onnxruntime loads only when needed

        return LocalEmbedder(cache_dir)
    raise IngestConfigError(
        f"unknown embedding model {name!r}; available: "
        + ", ".join(f"local/{m}" for m in LOCAL_MODELS)
    )
