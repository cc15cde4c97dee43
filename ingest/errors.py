"""Errors raised by the ingest package.

IngestError
 +-- UnreadableDocument        a file could not be loaded (it is skipped, with the reason)
 +-- EmbeddingError            the embedder could not produce vectors
 |    +-- ModelNotAvailable    the local model package is missing or broken
 +-- UpstreamError             an OpenAI-compatible server failed us
 |    +-- UpstreamRejected     a 4xx that retrying cannot fix (bad key, bad model, bad input)
 |    |    +-- QuotaExceeded   429 insufficient_quota: billing, not pacing
 |    +-- UpstreamUnavailable  429/5xx/timeouts/broken replies still failing after every retry
 |         +-- UpstreamUnreachable  nothing answers at the address (connection refused, unknown host)
 +-- IngestConfigError         inconsistent ingest settings
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


class UpstreamError(IngestError):
    """An OpenAI-compatible server did not give a usable answer."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # the server's error code, e.g. "context_length_exceeded"
        self.partial: dict[int, object] = {}  # results obtained before the failure, by position


class UpstreamRejected(UpstreamError):
    """The server refused the request in a way that retrying cannot fix."""


class QuotaExceeded(UpstreamRejected):
    """The account has no quota left (HTTP 429 insufficient_quota)."""


class UpstreamUnavailable(UpstreamError):
    """The server kept failing (429, 5xx, timeouts, dropped connections, broken replies)."""


class UpstreamUnreachable(UpstreamUnavailable):
    """No server answers at the address (refused, unknown host): retried briefly, not for minutes."""


class IngestConfigError(IngestError):
    """Settings that contradict each other or the existing index."""
