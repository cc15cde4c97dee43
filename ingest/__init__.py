"""Documents -> passages -> vectors: loaders, chunking, embedders and the pipeline."""

from __future__ import annotations

from .chunking import chunk_document, document_text, embedding_input
from .embeddings import Embedder, batched
from .errors import EmbeddingError, IngestConfigError, IngestError, ModelNotAvailable, UnreadableDocument
from .models import DEFAULT_EMBEDDING_MODEL, make_embedder
from .pipeline import IngestSummary, WalkOptions, ingest_documents, ingest_paths, open_index
from .records import Block, Chunk, ChunkingConfig, FoundFile, LoadedDocument, SkippedFile

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "Block",
    "Chunk",
    "ChunkingConfig",
    "Embedder",
    "EmbeddingError",
    "FoundFile",
    "IngestConfigError",
    "IngestError",
    "IngestSummary",
    "LoadedDocument",
    "ModelNotAvailable",
    "SkippedFile",
    "UnreadableDocument",
    "WalkOptions",
    "batched",
    "chunk_document",
    "document_text",
    "embedding_input",
    "ingest_documents",
    "ingest_paths",
    "make_embedder",
    "open_index",
]
