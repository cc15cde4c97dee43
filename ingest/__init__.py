"""Documents -> passages -> vectors: loaders, chunking, embedders and the pipeline."""

from __future__ import annotations

from .chunking import chunk_document, document_text, embedding_input
from .embeddings import Embedder, batched
from .errors import (
    EmbeddingError,
    IngestConfigError,
    IngestError,
    ModelNotAvailable,
    QuotaExceeded,
    UnreadableDocument,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from .models import DEFAULT_EMBEDDING_MODEL, RemoteOptions, embedder_for_index, make_embedder
from .openai_client import OpenAIClient, retry_after
from .openai_models import KNOWN_EMBEDDING_MODELS, TIER_LIMITS, price_of
from .pipeline import (
    Documents,
    Files,
    Folders,
    Source,
    WalkOptions,
    chunking_of,
    default_batch_size,
    default_chunking,
    find_index,
    ingest,
    open_index,
)
from .ratelimit import RateLimiter
from .records import Block, Chunk, ChunkingConfig, FoundFile, LoadedDocument, SkippedFile
from .summary import IngestSummary

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "KNOWN_EMBEDDING_MODELS",
    "TIER_LIMITS",
    "Block",
    "Chunk",
    "ChunkingConfig",
    "Embedder",
    "Documents",
    "EmbeddingError",
    "Files",
    "Folders",
    "FoundFile",
    "IngestConfigError",
    "IngestError",
    "IngestSummary",
    "LoadedDocument",
    "ModelNotAvailable",
    "OpenAIClient",
    "QuotaExceeded",
    "RateLimiter",
    "RemoteOptions",
    "SkippedFile",
    "Source",
    "UnreadableDocument",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamUnavailable",
    "UpstreamUnreachable",
    "WalkOptions",
    "batched",
    "chunk_document",
    "chunking_of",
    "default_batch_size",
    "default_chunking",
    "document_text",
    "embedder_for_index",
    "embedding_input",
    "find_index",
    "ingest",
    "make_embedder",
    "open_index",
    "price_of",
    "retry_after",
]
