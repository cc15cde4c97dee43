"""Errors raised by the search package.

    SearchError
     +-- InvalidQuery      a query the service cannot run (empty, k out of range, bad mode)
     +-- DatasetError      an evaluation dataset is missing or malformed
     +-- AnswerError       an answer could not be produced
"""

from __future__ import annotations


class SearchError(Exception):
    """Base class of every error raised by `search`."""


class InvalidQuery(SearchError):
    """A query that cannot be run; the message says what to change."""


class DatasetError(SearchError):
    """An evaluation dataset (BEIR layout) is missing a file or has a malformed one."""


class AnswerError(SearchError):
    """An answer could not be produced."""
