"""The indexes one server serves: the default one, named ones, and new ones made over HTTP.

Each index opens on first use (so the server can start before the first ingest) and
has one in-process write lock, taken by uploads, deletes and ingest jobs so they run
one at a time (the index's file lock keeps other processes out as well).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

from indexes import IndexExists, IndexNotFound, store_exists
from indexes.manifest import read_manifest
from ingest import Embedder, IngestConfigError, embedder_for_index, make_embedder, open_index
from search.errors import InvalidQuery
from search.search_pool import SearchPool
from search.service import SearchService
from search.settings import Settings

from .documents import remove_orphan_uploads

DEFAULT = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class IndexRegistry:
    """Name -> index folder -> opened `SearchService`; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._services: dict[str, SearchService] = {}
        self._write_locks: dict[str, threading.Lock] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()
        self.pool = SearchPool(settings, settings.search_workers) if settings.search_workers else None

    def folders(self) -> dict[str, Path]:
        """Every index this server knows, by name (the default first)."""
        found = {DEFAULT: self.settings.index_dir, **self.settings.named_indexes}
        for root in dict.fromkeys([self.settings.index_root, self.settings.vector_store_root]):
            if root is not None and root.is_dir():
                for child in sorted(root.iterdir()):
                    if store_exists(child) and _NAME.match(child.name):
                        found.setdefault(child.name, child)
        return found

    def folder(self, name: str) -> Path:
        folder = self.folders().get(name)
        if folder is None:
            message = f"no index or vector store named {name!r}; GET /indexes or /v1/vector_stores lists them"
            raise IndexNotFound(message)
        return folder

    def service(self, name: str = DEFAULT) -> SearchService:
        """The opened service of an index (opened on first use, without holding up the other indexes)."""
        with self._lock:
            service = self._services.get(name)
            opening = self._opening.setdefault(name, threading.Lock())
        if service is not None:
            return service
        with opening:  # one opening per index; others are served meanwhile
            with self._lock:
                service = self._services.get(name)
            if service is None:
                folder = self.folder(name)
                service = SearchService.from_settings(
                    self.settings.with_index(folder), embedder=self._embedder_for(folder)
                )
                remove_orphan_uploads(service.index)  # before this process takes any upload for it
                # Worker processes open the folder again: a Milvus index is searched by Milvus, in this process.
                service.pool = self.pool if service.index.manifest.store == "local" else None
                with self._lock:
                    self._services[name] = service
            return service

    def _embedder_for(self, folder: Path) -> Embedder:
        """The embedder an index needs, shared with every other index built the same way (one model in memory)."""
        manifest = read_manifest(folder) if store_exists(folder) else None
        if manifest is None:
            raise IndexNotFound(f"no index at {folder}: run `semsearch ingest PATH --index {folder}` first")
        return self.embedder(manifest.embedding_model, manifest.embedder)

    def embedder(self, model: str, recorded: dict[str, Any] | None = None) -> Embedder:
        """A shared embedder: by name for local models, by the manifest's record for remote ones."""
        key = model if model.startswith("local/") else json.dumps([model, recorded or {}], sort_keys=True)
        with self._lock:
            found = self._embedders.get(key)
        if found is not None:
            return found
        made = embedder_for_index(
            recorded or {}, model, cache_dir=self.settings.cache_dir, remote=self.settings.remote()
        )
        with self._lock:
            kept = self._embedders.setdefault(key, made)
        if kept is not made:
            made.close()  # another thread made the same one first
        return kept

    def opened(self) -> list[str]:
        """Names of the indexes opened so far."""
        with self._lock:
            return list(self._services)

    def write_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._write_locks.setdefault(name, threading.Lock())

    def create(self, name: str, embedding_model: str | None, *, root: Path | None = None) -> Path:
        """A new, empty index under `root` (default: the index root; vector stores give theirs)."""
        if not _NAME.match(name):
            raise InvalidQuery(
                "an index name is 1-63 lower-case letters, digits, '-' or '_', starting with a letter or digit"
            )
        root = root or self.settings.index_root
        if root is None:
            raise InvalidQuery("this server has no --index-root, so it cannot create indexes")
        if name in self.folders():
            raise IndexExists(f"an index named {name!r} already exists")
        model = embedding_model or self.settings.embedding_model
        shared = model.startswith("local/")  # the one copy in memory, kept open for the indexes that use it
        try:
            embedder = (
                self.embedder(model)
                if shared
                else make_embedder(model, cache_dir=self.settings.cache_dir, remote=self.settings.remote())
            )
        except IngestConfigError as exc:
            raise InvalidQuery(f"embedding_model: {exc}") from exc
        try:
            index, _ = open_index(root / name, embedder, None, store=self.settings.store, milvus=self.settings.milvus())
            index.close()
        finally:
            if not shared:
                embedder.close()
        return root / name

    def forget(self, name: str) -> None:
        """Close an index this server will no longer serve (its folder is about to go)."""
        with self._lock:
            service = self._services.pop(name, None)
        if service is not None:
            service.close()

    def close(self) -> None:
        with self._lock:
            for service in self._services.values():
                service.close()
            for embedder in self._embedders.values():
                embedder.close()
            self._services.clear()
            self._embedders.clear()
        if self.pool is not None:
            self.pool.close()
