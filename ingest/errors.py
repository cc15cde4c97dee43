"""Errors raised by the ingest package.

    IngestError
     +-- UnreadableDocument      a file could not be loaded (it is skipped, with the reason)
     +-- EmbeddingError          the embedder could not produce vectors
     |    +-- ModelNotAvailable  the local model package is missing or broken
     +-- IngestConfigError       inconsistent ingest settings
"""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error raised by `ingest`."""


class UnreadableDocument(IngestError):
    """A file that cannot be turned into text; `reason` says why, in a few words."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EmbeddingError(IngestError):
    """The embedder failed to turn texts into vectors."""


class ModelNotAvailable(EmbeddingError):
    """The embedding model cannot be loaded (package missing, files damaged)."""


class IngestConfigError(IngestError):
    """Settings that contradict each other or the existing index."""
