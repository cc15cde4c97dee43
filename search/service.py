"""The search service: an opened index with the embedder its manifest names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexes import Index
from ingest import Embedder, RemoteOptions, embedder_for_index

from .answer import Answer, extractive_answer
from .retrieve import Hit, check_query, search


class SearchService:
    """Search and ask over one index; safe to share between threads."""

    def __init__(self, index: Index, embedder: Embedder) -> None:
        index.manifest.check_model(embedder.name, embedder.dimension)
        self.index = index
        self.embedder = embedder

    @classmethod
    def open(cls, folder: Path, *, cache_dir: Path, remote: RemoteOptions | None = None) -> SearchService:
        """Open the index at `folder` and the embedder its manifest records."""
        index = Index.open(folder)
        manifest = index.manifest
        return cls(index, embedder_for_index(manifest.embedder, manifest.embedding_model, cache_dir=cache_dir, remote=remote))

    def search(self, query: str, k: int = 10, mode: str = "hybrid") -> list[Hit]:
        """The k best passages for `query`."""
        return search(self.index, self.embedder, query, k, mode)

    def ask(self, question: str, k: int = 5, mode: str = "hybrid") -> Answer:
        """An answer drawn from the k best passages."""
        text = check_query(question, k, mode)
        return extractive_answer(text, self.search(text, k, mode), self.embedder)

    def stats(self) -> dict[str, Any]:
        """Documents, chunks, model, index type, size on disk."""
        return self.index.stats()

    def close(self) -> None:
        """Close the catalog connection and the embedder's HTTP connections."""
        self.index.close()
        self.embedder.close()
