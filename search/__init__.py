"""Queries -> passages -> answers: retrieval, fusion, answers, the HTTP app and the CLI."""

from __future__ import annotations

from .answer import Answer, Citation, extractive_answer
from .app import create_app
from .errors import AnswerError, DatasetError, InvalidFilter, InvalidQuery, SearchError
from .evaluate import BeirDataset, EvalReport, evaluate, load_beir, run_beir
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
    "create_app",
    "evaluate",
    "extractive_answer",
    "fuse",
    "load_beir",
    "parse_filters",
    "rank_documents",
    "run_beir",
    "search",
]
