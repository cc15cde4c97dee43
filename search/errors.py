"""Errors raised by the search package.

    SearchError
     +-- InvalidQuery      a query the service cannot run (empty, k out of range, bad mode)
     +-- ConfigError       settings that cannot work (an unknown chat provider)
     +-- DatasetError      an evaluation dataset is missing or malformed
     +-- AnswerError       an answer could not be produced
          +-- AnswerRefused  the question was refused (flagged by moderation)
"""

from __future__ import annotations


class SearchError(Exception):
    """Base class of every error raised by `search`."""


class InvalidQuery(SearchError):
    """A query that cannot be run; the message says what to change."""


class ConfigError(SearchError):
    """Settings that cannot work; the message says which and what to set instead."""


class DatasetError(SearchError):
    """An evaluation dataset (BEIR layout) is missing a file or has a malformed one."""


class AnswerError(SearchError):
    """An answer could not be produced."""


class AnswerRefused(AnswerError):
    """The question is not answered (moderation flagged it); the message says why."""
