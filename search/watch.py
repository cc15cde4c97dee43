"""Keeping an index in sync with folders: re-ingest them every few seconds.

Each pass costs a walk and a stat per file when nothing changed (unchanged files are
recognised by size and mtime); added, changed, renamed and deleted files are
picked up by the ordinary incremental ingest, a rename reusing the stored vectors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ingest import Folders, IngestSummary, WalkOptions, ingest

from .errors import ERROR_FAMILIES
from .service import SearchService


class Watcher:
    """Re-ingests `paths` into a service's index every `interval` seconds until stopped."""

    def __init__(
        self,
        service: SearchService,
        paths: Sequence[Path],
        options: WalkOptions,
        *,
        interval: float = 2.0,
        lock: threading.Lock | None = None,
        report: Callable[[IngestSummary | Exception], None] | None = None,
    ) -> None:
        self.service, self.paths, self.options, self.interval = service, list(paths), options, interval
        self._lock = lock or threading.Lock()
        self._report = report or (lambda _: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def run_once(self) -> IngestSummary:
        """One pass: bring the index in line with the folders now."""
        with self._lock:
            summary = ingest(self.service.index, self.service.embedder, Folders(self.paths, self.options))
        self.passes += 1
        return summary

    def run_forever(self) -> None:
        """Pass after pass until `stop()`; a failing pass is reported, and the next one tries again."""
        while not self._stop.is_set():
            try:
                self._report(self.run_once())
            except ERROR_FAMILIES + (OSError,) as exc:
                self._report(exc)
            self._stop.wait(self.interval)

    def start(self) -> Watcher:
        self._thread = threading.Thread(target=self.run_forever, name="semsearch-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
