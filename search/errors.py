"""Errors raised by the search package.

    SearchError
     +-- InvalidQuery      a query the service cannot run (empty, k out of range, bad mode)
     |    +-- InvalidFilter  a metadata filter that is malformed (the message says where)
     +-- ConfigError       settings that cannot work (an unknown chat provider)
     |    +-- KeyConfigError   an API key spec or file that cannot be used (also a ValueError)
     +-- DatasetError      an evaluation dataset is missing or malformed
     +-- AnswerError       an answer could not be produced
     |    +-- AnswerRefused  the question was refused (flagged by moderation)
     +-- RequestRejected   a request refused before it runs; carries its HTTP status
          +-- Unauthorized   no API key, or an unknown one (401)
          +-- Forbidden      a key without the right to this route or index (403)
          +-- RateLimited    the key's request budget is spent (429, retry-after)
          +-- TooLarge       a body or upload over the configured limit (413)

`ERROR_FAMILIES` is the three packages' base classes: what the edges (the CLI, the
app, jobs, the watcher) catch and turn into output.
"""

from __future__ import annotations

from collections.abc import Mapping

from indexes import IndexStoreError
from ingest import IngestError


class SearchError(Exception):
    """Base class of every error raised by `search`."""


class InvalidQuery(SearchError):
    """A query that cannot be run; the message says what to change."""


class InvalidFilter(InvalidQuery):
    """A metadata filter that breaks the grammar; the message names the part, e.g. `filters.filters[1].type`."""


class ConfigError(SearchError):
    """Settings that cannot work; the message says which and what to set instead."""


class DatasetError(SearchError):
    """An evaluation dataset (BEIR layout) is missing a file or has a malformed one."""


class AnswerError(SearchError):
    """An answer could not be produced."""


class AnswerRefused(AnswerError):
    """The question is not answered (moderation flagged it); the message says why."""


class KeyConfigError(ConfigError, ValueError):
    """An API key spec or file that cannot be used; the message names the entry or line, never the key."""


class RequestRejected(SearchError):
    """A request refused before it runs; `status_code`, `kind` and `headers` say how to answer it."""

    status_code = 400
    kind = "request_rejected"

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


class Unauthorized(RequestRejected):
    """No API key was sent, or not a known one."""

    status_code = 401
    kind = "unauthorized"


class Forbidden(RequestRejected):
    """The API key may not use this route (read-only) or this index (scoped)."""

    status_code = 403
    kind = "forbidden"


class RateLimited(RequestRejected):
    """The key has used up its requests for now; `retry-after` says when to come back."""

    status_code = 429
    kind = "rate_limited"


class TooLarge(RequestRejected):
    """A request body, or the number of files in it, is over the configured limit."""

    status_code = 413
    kind = "too_large"


ERROR_FAMILIES: tuple[type[Exception], ...] = (SearchError, IngestError, IndexStoreError)
