"""Searches in worker processes, so that one server's searches use every core.

A search is ~2/3 Python (fusion, scores, snippets) and the HTTP layer is Python too: in one
process they take turns under the GIL, and 8 connections got 1.0-1.2x the throughput of one
on 2 cores (py-spy: the GIL held all the time, by the event loop ~40%, by searches ~60%). So
`serve` hands each search to a pool of processes, each with the index opened read-only
(snapshots and new publishes work across processes as they do across threads); the server
process keeps HTTP, answers, ingest jobs and merges.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .retrieve import Hit
    from .service import SearchService
    from .settings import Settings


class SearchPool:
    """`workers` processes that run `SearchService.search` for any index folder (opened on first use)."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings.updated(chat_model="none", search_workers=0)  # a worker searches, in process
        self.workers = workers
        self._lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server has threads (and FAISS its OpenMP pool) a fork would copy mid-flight.
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_begin, initargs=(self.settings,))

    def search(self, folder: Path, *args: Any, **kwargs: Any) -> list[Hit]:
        """`SearchService.search(*args, **kwargs)` on the index at `folder`, in a worker; its errors are raised here."""
        executor = self._executor
        try:
            return executor.submit(_search, folder, args, kwargs).result()
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh, once
            with self._lock:
                if self._executor is executor:
                    self._executor = self._start()
            return self._executor.submit(_search, folder, args, kwargs).result()

    def warm(self, folder: Path) -> None:
        """Start the workers and open `folder` in each, without waiting (the first searches need not)."""
        for _ in range(self.workers):
            self._executor.submit(_open, folder)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


_settings: Settings | None = None
_services: dict[Path, SearchService] = {}


def _begin(settings: Settings) -> None:
    global _settings
    _settings = settings


def _open(folder: Path) -> SearchService:
    service = _services.get(folder)
    if service is None:
        from .service import SearchService

        assert _settings is not None, "the pool's initializer sets the settings"
        service = SearchService.from_settings(_settings.with_index(folder))
        _services[folder] = service
    return service


def _search(folder: Path, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Hit]:
    return _open(folder).search(*args, **kwargs)
