"""`serve` merges vector segments in the background, as the tiered policy asks (`indexes/merge.py`)."""

from __future__ import annotations

import logging
import threading

from indexes import IndexBusy
from indexes.merge import MergeResult

from .registry import IndexRegistry

log = logging.getLogger("semsearch.merge")

COMMIT_WAIT = 60.0  # seconds a built merge waits for a running ingest before it is dropped


class BackgroundMerger:
    """A daemon thread that looks at the opened indexes every `interval` seconds and merges what needs it."""

    def __init__(self, registry: IndexRegistry, interval: float) -> None:
        self.registry = registry
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="semsearch-merge", daemon=True)

    def start(self) -> BackgroundMerger:
        if self.interval > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name in self.registry.opened():
                self.merge(name)

    def merge(self, name: str) -> list[MergeResult]:
        """One round of merges on one index; errors are logged, never raised (the next round retries)."""
        try:
            results = self.registry.service(name).index.maintain(wait=COMMIT_WAIT)
        except IndexBusy as exc:
            log.info("merge of index %s postponed: %s", name, exc)
            return []
        except Exception:  # noqa: BLE001 - a background thread must outlive one failure
            log.exception("merging the segments of index %s failed", name)
            return []
        for result in results:
            log.info(
                "index %s: merged %d segments into one %s segment of %d vectors (%d deleted dropped) in %.2f s, "
                "writers paused %.3f s",
                name,
                result.segments,
                result.kind,
                result.vectors,
                result.dropped,
                result.seconds,
                result.locked_seconds,
            )
        return results
