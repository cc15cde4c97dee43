"""Vector-store files are ingested in the background, one worker thread for the server.

A file attached to a store is recorded `in_progress` at once (so OpenAI's `create_and_poll` helpers
poll it), queued, then stored and ingested through the upload path under the index's write lock.
Queued files of one store are ingested together (one publish for up to `GROUP` files). A file that
cannot be read ends `failed` with `last_error`; a temporary problem (another process writing the
index, the embedding server's 429s and 5xx) is retried with backoff, `TRIES` times in all; a restarted
server resumes what was `in_progress`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from indexes import IndexBusy, IndexNotFound
from ingest import ChunkingConfig, UpstreamError, UpstreamRejected
from search.errors import ERROR_FAMILIES

from ...documents import Upload, delete_document, find_by_path, store_and_ingest
from ...registry import IndexRegistry
from ..file_store import FileNotFound, FileStore
from .state import FileRecord, editing_files, read_files, update_file

log = logging.getLogger("semsearch.vector_stores")
GROUP = 16  # files per publish: fewer, larger segments than one publish a file
TRIES, BACKOFF, LONGEST = 8, 1.0, 30.0  # a busy index waits 1, 2, 4 ... 30 s between tries (about 90 s in all)


@dataclass(frozen=True)
class Task:
    store: str
    file_id: str
    batch_id: str | None = None
    tries: int = 0  # tries that met a temporary problem
    due: float = 0.0  # time.monotonic() before which it waits


class VectorStoreWorker:
    """Runs queued file ingests in order; `cancel` drops a batch's files that have not started."""

    def __init__(self, registry: IndexRegistry, files: FileStore) -> None:
        self.registry, self.files = registry, files
        self._pending: list[Task] = []
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vector-store-files", daemon=True)

    def start(self) -> VectorStoreWorker:
        """Start the worker, first queueing every file a previous run left `in_progress`."""
        for store, folder in self.registry.folders().items():
            if folder.is_dir():
                records = read_files(folder).files.values()
                resumed = [Task(store, r.id, r.batch_id) for r in records if r.status == "in_progress"]
                self.submit(resumed)
        self._thread.start()
        return self

    def submit(self, tasks: Iterable[Task]) -> None:
        with self._ready:
            self._pending.extend(tasks)
            self._ready.notify()

    def cancel(self, store: str, file_ids: Iterable[str], *, batch_id: str | None = None) -> set[str]:
        """Drop these files (only their tasks of this batch, if given) from the queue; returns the ids
        dropped (the others have started or finished)."""
        wanted = set(file_ids)

        def drops(t: Task) -> bool:
            return t.store == store and t.file_id in wanted and (batch_id is None or t.batch_id == batch_id)

        with self._ready:
            dropped = {t.file_id for t in self._pending if drops(t)}
            self._pending = [t for t in self._pending if not drops(t)]
        return dropped

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _take(self) -> list[Task] | None:
        """The next group of due tasks of one store (waiting for one to be due); None once closed."""
        with self._ready:
            while not self._closed:
                now = time.monotonic()
                due = [t for t in self._pending if t.due <= now]
                if due:
                    group = [t for t in due if t.store == due[0].store][:GROUP]
                    self._pending = [t for t in self._pending if t not in group]
                    return group
                self._ready.wait(min((t.due - now for t in self._pending), default=None))
            return None

    def _run(self) -> None:
        while (group := self._take()) is not None:
            try:
                self._ingest(group[0].store, group)
            except Exception:  # a bug must not stop the queue; the files say server_error
                log.exception("vector store %s: ingesting %d files failed unexpectedly", group[0].store, len(group))
                try:
                    self._fail(group[0].store, [t.file_id for t in group], "server_error", "the server failed")
                except Exception:  # nor a failure to record it (a full disk): the thread must live on
                    log.exception("vector store %s: cannot record %d files as failed", group[0].store, len(group))

    def _ingest(self, store: str, tasks: list[Task]) -> None:
        try:
            folder = self.registry.folder(store)
            self.registry.service(store)
        except ERROR_FAMILIES:
            return  # the store was deleted meanwhile: its files went with it
        records = read_files(folder).files
        by_chunking: dict[tuple[int, int], list[Task]] = {}
        for task in tasks:
            record = records.get(task.file_id)
            if record is not None and record.status == "in_progress":
                by_chunking.setdefault((record.max_tokens, record.overlap_tokens), []).append(task)
        for chunking, group in by_chunking.items():
            try:
                unwanted = self._ingest_group(store, folder, ChunkingConfig(*chunking), group)
            except ERROR_FAMILIES + (OSError,) as exc:
                self._retry_or_fail(store, group, exc)
                continue
            for result in unwanted:
                self._unwanted(store, folder, result)

    def _ingest_group(
        self, store: str, folder: Path, chunking: ChunkingConfig, group: list[Task]
    ) -> list[dict[str, Any]]:
        """Ingest the files and record how each went, all under the write lock (so an attribute change
        waits, then finds the document); returns the results of files removed from the store meanwhile."""
        with self.registry.write_lock(store):
            if not folder.is_dir():
                return []  # the store was deleted meanwhile
            records = read_files(folder).files  # read now: an attribute change made while queued is kept
            current = [r for t in group if (r := records.get(t.file_id)) is not None and r.status == "in_progress"]
            uploads, readable = self._uploads(folder, current)
            service = self.registry.service(store)
            for record in readable:
                if record.path and (old := find_by_path(service.index, record.path)) is not None:
                    delete_document(service.index, old["id"])  # attached again: made anew below
            results = store_and_ingest(service, uploads, chunking) if uploads else []
            return [
                result
                for record, result in zip(readable, results)
                if update_file(folder, record.id, partial(_finished, result=result)) is None
            ]

    def _retry_or_fail(self, store: str, group: list[Task], exc: Exception) -> None:
        """Queue the files again later if the problem is temporary and tries are left, else fail them."""
        again = [t for t in group if _temporary(exc) and t.tries + 1 < TRIES]
        if again:
            delay = min(BACKOFF * 2 ** again[0].tries, LONGEST)
            log.warning("vector store %s: %s; %d files tried again in %.0f s", store, exc, len(again), delay)
            self.submit(replace(t, tries=t.tries + 1, due=time.monotonic() + delay) for t in again)
        if given_up := [t.file_id for t in group if t not in again]:
            tried = f" (tried {TRIES} times)" if _temporary(exc) else ""
            self._fail(store, given_up, "server_error", f"{exc}{tried}")

    def _unwanted(self, store: str, folder: Path, result: dict[str, Any]) -> None:
        """A file removed from the store while it was being ingested: its new document goes too."""
        if result["status"] != "completed" or result["duplicate"]:
            return  # nothing new was made
        document = result["document"]
        with self.registry.write_lock(store):
            if not any(r.path == document["path"] for r in read_files(folder).files.values()):
                with contextlib.suppress(IndexNotFound):  # removed meanwhile another way
                    delete_document(self.registry.service(store).index, document["id"])

    def _uploads(self, folder: Path, group: list[FileRecord]) -> tuple[list[Upload], list[FileRecord]]:
        """The bytes of each file still in /v1/files (those deleted meanwhile fail)."""
        uploads, readable = [], []
        for record in group:
            try:
                data = self.files.path(record.id).read_bytes()
            except (FileNotFound, OSError):
                update_file(folder, record.id, _gone)
                continue
            uploads.append(Upload(record.filename, data, dict(record.attributes), owner=record.id))  # a document each
            readable.append(record)
        return uploads, readable

    def _fail(self, store: str, file_ids: list[str], code: str, message: str) -> None:
        try:
            folder = self.registry.folder(store)
        except ERROR_FAMILIES:
            return
        with editing_files(folder) as state:
            for file_id in file_ids:
                record = state.files.get(file_id)
                if record is not None and record.status == "in_progress":
                    state.files[file_id] = replace(record, status="failed", last_error=_error(code, message))


def _temporary(exc: Exception) -> bool:
    """Another process writing the index, or the embedding server's 429s and 5xx: worth another try."""
    if isinstance(exc, IndexBusy):
        return True
    return isinstance(exc, UpstreamError) and not isinstance(exc, UpstreamRejected)


def _gone(record: FileRecord) -> FileRecord:
    message = "the file was deleted from /v1/files before it was processed"
    return replace(record, status="failed", last_error=_error("invalid_file", message))


def _finished(record: FileRecord, *, result: dict[str, Any]) -> FileRecord:
    """A record after its ingest: completed with its document, or failed with why."""
    if record.status != "in_progress":
        return record  # cancelled meanwhile
    if result["status"] == "completed":
        document = result["document"]
        return replace(record, status="completed", path=document["path"], usage_bytes=int(document["size"]))
    return replace(record, status="failed", last_error=_error(_code(result["error"]), result["error"]))


def _code(reason: str) -> str:
    """OpenAI's error code for why a file was not ingested."""
    if reason.startswith("unsupported file type"):
        return "unsupported_file"
    if reason.startswith("cannot store"):
        return "server_error"
    return "invalid_file"  # empty, unreadable, encrypted, binary, a name too long


def _error(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}
