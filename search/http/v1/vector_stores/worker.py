"""Vector-store files are ingested in the background, one worker thread for the server.

A file attached to a store is recorded `in_progress` at once (so OpenAI's `create_and_poll` helpers
poll it), queued, then stored and ingested through the upload path under the index's write lock.
Queued files of one store are ingested together (one publish for up to `GROUP` files). A file that
cannot be read ends `failed` with `last_error`; a restarted server resumes what was `in_progress`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from indexes import IndexNotFound
from ingest import ChunkingConfig
from search.errors import ERROR_FAMILIES

from ...documents import Upload, delete_document, store_and_ingest
from ...registry import IndexRegistry
from ..file_store import FileNotFound, FileStore
from .state import FileRecord, editing_files, read_files, update_file

log = logging.getLogger("semsearch.vector_stores")
GROUP = 16  # files per publish: fewer, larger segments than one publish a file


@dataclass(frozen=True)
class Task:
    store: str
    file_id: str


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
                resumed = [Task(store, r.id) for r in read_files(folder).files.values() if r.status == "in_progress"]
                self.submit(resumed)
        self._thread.start()
        return self

    def submit(self, tasks: Iterable[Task]) -> None:
        with self._ready:
            self._pending.extend(tasks)
            self._ready.notify()

    def cancel(self, store: str, file_ids: Iterable[str]) -> set[str]:
        """Drop these files from the queue; returns the ids dropped (the others have started or finished)."""
        wanted = set(file_ids)
        with self._ready:
            dropped = {t.file_id for t in self._pending if t.store == store and t.file_id in wanted}
            self._pending = [t for t in self._pending if not (t.store == store and t.file_id in dropped)]
        return dropped

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _take(self) -> list[Task] | None:
        with self._ready:
            while not self._pending and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            store = self._pending[0].store
            group = [t for t in self._pending if t.store == store][:GROUP]
            self._pending = [t for t in self._pending if t not in group]
            return group

    def _run(self) -> None:
        while (group := self._take()) is not None:
            try:
                self._ingest(group[0].store, [t.file_id for t in group])
            except Exception:  # a bug must not stop the queue; the files say server_error
                log.exception("vector store %s: ingesting %d files failed unexpectedly", group[0].store, len(group))
                self._fail(group[0].store, [t.file_id for t in group], "server_error", "the server failed unexpectedly")

    def _ingest(self, store: str, file_ids: list[str]) -> None:
        try:
            folder = self.registry.folder(store)
            service = self.registry.service(store)
        except ERROR_FAMILIES:
            return  # the store was deleted meanwhile: its files went with it
        records = read_files(folder).files
        by_chunking: dict[tuple[int, int], list[FileRecord]] = {}
        for file_id in file_ids:
            record = records.get(file_id)
            if record is not None and record.status == "in_progress":
                by_chunking.setdefault((record.max_tokens, record.overlap_tokens), []).append(record)
        for (size, overlap), group in by_chunking.items():
            uploads, readable = self._uploads(folder, group)
            try:
                with self.registry.write_lock(store):
                    if not folder.is_dir():
                        return  # the store was deleted meanwhile
                    results = store_and_ingest(service, uploads, ChunkingConfig(size, overlap)) if uploads else []
            except ERROR_FAMILIES + (OSError,) as exc:
                self._fail(store, [r.id for r in readable], "server_error", str(exc))
                continue
            for record, result in zip(readable, results):
                if update_file(folder, record.id, partial(_finished, result=result)) is None:
                    self._unwanted(store, folder, result)

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
