"""Errors raised by the indexes package.

IndexStoreError
 +-- IndexNotFound        no index at the given folder
 +-- IndexExists          creating an index where one already is
 +-- DimensionMismatch    the index was built with another embedding model or size
 +-- IndexCorrupt         files present but unreadable or inconsistent
 +-- IndexBusy            another process is writing to the index
 +-- StoreUnavailable     the index's store (a Milvus server) refused, is down or did not answer in time
 +-- FilterTooBroad       a filter a Milvus store cannot express (a glob matching too many documents)
 +-- LexicalUnavailable   lexical search on a store without BM25 (a Milvus server before 2.5)
"""

from __future__ import annotations


class IndexStoreError(Exception):
    """Base class of every error raised by `indexes`."""


class IndexNotFound(IndexStoreError):
    """There is no index at the folder given."""


class IndexExists(IndexStoreError):
    """An index already exists where a new one was to be created."""


class DimensionMismatch(IndexStoreError):
    """The index was built with a different embedding model or vector size."""


class IndexCorrupt(IndexStoreError):
    """The index files exist but cannot be read or do not agree with each other."""


class IndexBusy(IndexStoreError):
    """Another process holds the index's write lock."""


class StoreUnavailable(IndexStoreError):
    """The store holding the index (a Milvus server) cannot be reached or did not answer within the timeout."""


class FilterTooBroad(IndexStoreError):
    """A glob filter matches more documents than a Milvus expression can list."""


class LexicalUnavailable(IndexStoreError):
    """Lexical (BM25) search on a store that has none, such as a Milvus server before 2.5."""
