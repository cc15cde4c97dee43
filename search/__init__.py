"""Queries -> passages -> answers: retrieval and fusion here; answers/, evaluation/, http/ and cli/ beside.

The edges (`search.http`, `search.cli`) import this core, never the reverse; importing
`search` loads neither FastAPI nor a model.
"""

from __future__ import annotations

from .answers.extractive import Answer, Citation, extractive_answer
from .errors import AnswerError, DatasetError, InvalidFilter, InvalidQuery, SearchError
from .evaluation.beir import BeirDataset, EvalReport, evaluate, load_beir, run_beir
from .filters import Filter, parse_filters
from .fusion import FUSIONS, fuse
from .retrieve import MODES, Hit, rank_documents, search
from .service import SearchService
from .settings import Settings

__all__ = [
    "FUSIONS",
    "MODES",
    "Answer",
    "AnswerError",
    "BeirDataset",
    "Citation",
    "DatasetError",
    "EvalReport",
    "Filter",
    "Hit",
    "InvalidFilter",
    "InvalidQuery",
    "SearchError",
    "SearchService",
    "Settings",
    "evaluate",
    "extractive_answer",
    "fuse",
    "load_beir",
    "parse_filters",
    "rank_documents",
    "run_beir",
    "search",
]
