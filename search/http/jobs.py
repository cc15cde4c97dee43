"""Server-side ingest jobs: queued, run one at a time per index, observable, cancellable.

A job ingests a folder the server is allowed to read. Searches keep working while it
runs and keep seeing the index as it was until the job publishes; a cancelled or
failed job publishes nothing (what it embedded stays staged for the next run).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import Folders, IngestSummary, WalkOptions, ingest
from search.errors import ERROR_FAMILIES, InvalidQuery, SearchError

from .registry import IndexRegistry

log = logging.getLogger("semsearch.jobs")


class PathNotAllowed(SearchError):
    """A path outside the folders the server may ingest from (HTTP 403)."""


class JobCancelled(Exception):
    """Raised inside a job's progress callback to stop it."""


@dataclass
class Job:
    """One ingest job and everything a client may want to know about it."""

    id: str
    index: str
    path: str
    status: str = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    done: int = 0
    total: int = 0
    summary: IngestSummary | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def as_dict(self) -> dict[str, Any]:
        elapsed = (self.finished_at or time.time()) - self.started_at if self.started_at else 0.0
        eta = elapsed / self.done * (self.total - self.done) if self.status == "in_progress" and self.done else None
        out: dict[str, Any] = {
            "id": self.id,
            "object": "ingest.job",
            "index": self.index,
            "path": self.path,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": {
                "files_done": self.done,
                "files_total": self.total,
                "fraction": round(self.done / self.total, 4) if self.total else 0.0,
                "eta_seconds": round(eta, 1) if eta is not None else None,
            },
            "error": self.error,
        }
        if self.summary is not None:
            summary = self.summary.as_dict()
            out["counts"] = {
                k: summary[k]
                for k in ("files_seen", "ingested", "unchanged", "removed", "chunks", "tokens", "embedded")
            }
            out["file_errors"] = summary["skipped"]
        return out


class JobManager:
    """Runs ingest jobs on one worker thread, in the order they were asked for."""

    def __init__(
        self, registry: IndexRegistry, *, on_summary: Callable[[str, IngestSummary], None] | None = None
    ) -> None:
        self.registry = registry
        self._on_summary = on_summary or (lambda index, summary: None)
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, WalkOptions] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="semsearch-ingest", daemon=True)
        self._worker.start()

    def submit(self, index: str, path: str, options: WalkOptions) -> Job:
        """Queue an ingest of `path` (which must be inside an allowed root) into `index`."""
        folder = allowed_path(path, self.registry.settings.ingest_roots)
        self.registry.folder(index)  # an unknown index is an error now, not in the worker
        job = Job(id=f"job_{uuid.uuid4().hex[:20]}", index=index, path=str(folder))
        self._jobs[job.id] = job
        self._queue.put((job, options))
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id!r}")
        return job

    def cancel(self, job_id: str) -> Job:
        """Stop a job: at once if queued, at its next file if running."""
        job = self.get(job_id)
        if job.status in ("queued", "in_progress"):
            job.cancel.set()
            if job.status == "queued":
                job.status, job.finished_at = "cancelled", time.time()
        return job

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def close(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()
        self._queue.put(None)
        self._worker.join(timeout=30)

    def _run(self) -> None:
        for item in iter(self._queue.get, None):
            job, options = item
            if job.status == "cancelled":
                continue
            try:
                self._execute(job, options)
            except Exception as exc:  # even a failure to record a failure must not stop the queue
                log.exception("ingest job %s could not finish", job.id)
                job.status, job.error, job.finished_at = "failed", _reason(exc), time.time()

    def _execute(self, job: Job, options: WalkOptions) -> None:
        job.status, job.started_at = "in_progress", time.time()

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total
            if job.cancel.is_set():
                raise JobCancelled

        try:
            service = self.registry.service(job.index)
            with self.registry.write_lock(job.index):
                source = Folders([Path(job.path)], options)
                job.summary = ingest(service.index, service.embedder, source, progress=progress)
            job.status = "completed"
            self._on_summary(job.index, job.summary)
        except JobCancelled:
            job.status = "cancelled"
        except ERROR_FAMILIES + (OSError,) as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # a bug or an unforeseen file: this job fails, the worker goes on
            log.exception("ingest job %s failed unexpectedly", job.id)
            job.status, job.error = "failed", _reason(exc)
        finally:
            job.finished_at = time.time()


def _reason(exc: BaseException) -> str:
    return f"unexpected {type(exc).__name__}: {exc} (the server's log has the details)"


class JobNotFound(SearchError):
    """No job with that id (HTTP 404)."""


def allowed_path(path: str, roots: Sequence[Path]) -> Path:
    """The real path of `path` if it lies inside one of `roots` (symlinks resolved), else 403."""
    if not roots:
        raise PathNotAllowed(
            "this server ingests no folders: start it with --ingest-root DIR (or SEMSEARCH_INGEST_ROOTS)"
        )
    if ".." in Path(path).parts:
        raise PathNotAllowed(f"{path!r}: '..' is not allowed in ingest paths")
    try:
        real = Path(os.path.realpath(path))
        for root in roots:
            base = Path(os.path.realpath(root))
            if real == base or base in real.parents:
                if not real.exists():
                    raise InvalidQuery(f"{path!r} does not exist")
                return real
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL byte
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidQuery(f"{path[:200]!r} is not a path this server can read: {reason}") from exc
    raise PathNotAllowed(f"{path!r} is outside the folders this server may ingest from")
