"""Search across vector stores: each query in each store, merged best first (also `file_search`'s search)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import InvalidQuery
from search.filters import parse_filters
from search.retrieve import DEFAULT_MODE, Hit, search

from ...error_shapes import BadParam
from ...registry import IndexRegistry
from .objects import DOC_PREFIX
from .state import read_files

RANKERS = ("auto", "default-2024-11-15", "none")
_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how is are was were do does did can could should would will "
    "please tell me explain describe find show give list about the a an of".split()
)
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class StoreHit:
    """A passage found in a vector store, with the file it belongs to."""

    store_id: str
    file_id: str
    filename: str
    hit: Hit  # search.retrieve's Hit: the passage and its score in [0, 1]
    attributes: dict[str, Any] = field(default_factory=dict)  # the document's, as filters see them

    def as_result(self) -> dict[str, Any]:
        """OpenAI's vector-store search result."""
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "score": round(self.hit.score, 6),
            "attributes": self.attributes,
            "content": [{"type": "text", "text": self.hit.text}],
        }


def search_stores(
    registry: IndexRegistry,
    store_ids: Sequence[str],
    queries: Sequence[str],
    *,
    max_num_results: int = 10,
    filters: dict[str, Any] | None = None,
    score_threshold: float | None = None,
    ranker: str = "auto",
) -> list[StoreHit]:
    """The best passages for any of `queries` in any of the stores, best first by score (hybrid search).

    `filters` is OpenAI's filter grammar; `ranker="none"` skips the server's reranker if it has one.
    An unknown store is IndexNotFound; access checks are the caller's.
    """
    try:
        where = parse_filters(filters)
    except InvalidQuery as exc:
        raise BadParam(str(exc), "filters") from exc
    best: dict[tuple[str, int], tuple[str, Hit]] = {}
    for store in dict.fromkeys(store_ids):
        service = registry.service(store)
        for query in queries:
            if ranker == "none" and service.reranker is not None:
                hits = search(
                    service.index,
                    service.embedder,
                    query,
                    max_num_results,
                    DEFAULT_MODE,
                    filters=where,
                    limits=service.limits,
                )
            else:
                hits = service.search(query, max_num_results, filters=where)
            for hit in hits:
                key = (store, hit.chunk_id)
                if (score_threshold is None or hit.score >= score_threshold) and (
                    key not in best or best[key][1].score < hit.score
                ):
                    best[key] = (store, hit)
    ranked = sorted(best.values(), key=lambda pair: pair[1].score, reverse=True)[:max_num_results]
    return _with_files(registry, ranked)


def _with_files(registry: IndexRegistry, ranked: list[tuple[str, Hit]]) -> list[StoreHit]:
    """Each hit with its file's id, name and attributes (one catalog read per store)."""
    attributes: dict[tuple[str, int], dict[str, Any]] = {}
    files: dict[str, dict[str, tuple[str, str]]] = {}
    for store in dict.fromkeys(store for store, _ in ranked):
        index = registry.service(store).index
        files[store] = _attached(index.folder)
        with index.read() as reader:
            for document_id in {hit.document_id for s, hit in ranked if s == store}:
                document = reader.document(document_id)
                attributes[store, document_id] = document.record.attributes if document is not None else {}
    out = []
    for store, hit in ranked:
        default = (f"{DOC_PREFIX}{hit.document_id}", Path(hit.path).name)
        file_id, filename = files[store].get(hit.path, default)
        out.append(StoreHit(store, file_id, filename, hit, attributes[store, hit.document_id]))
    return out


def _attached(folder: Path) -> dict[str, tuple[str, str]]:
    """Document path -> (file id, file name) of the files attached over /v1 (the oldest id wins)."""
    records = sorted(read_files(folder).files.values(), key=lambda r: (r.created_at, r.id), reverse=True)
    return {r.path: (r.id, r.filename) for r in records if r.status == "completed" and r.path}


def rewrite_query(query: str) -> str:
    """`rewrite_query`: the query without question words, filler and punctuation ("What is X?" -> "X")."""
    words = _WORD.findall(query)
    kept = [w for w in words if w.lower() not in _QUESTION_WORDS]
    return " ".join(kept or words) or query.strip()
