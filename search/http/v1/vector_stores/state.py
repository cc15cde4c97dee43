"""What a vector store keeps beside its index: `vector_store.json` and `vector_store_files.json`.

    vector_store.json        the store's name, description, metadata, expiry, created_at, last_active_at
    vector_store_files.json  {"files": {file id: FileRecord}, "batches": {batch id: BatchRecord}}

Each is rewritten whole, through a temporary file, fsync and rename, so a crash leaves the old or
the new version. One lock per folder serialises read-modify-write cycles; it is not the index's
write lock, so stamping `last_active_at` never waits for an ingest. An index without `vector_store.json`
(the default one, --named-index) is not written to by searches: its `last_active_at` is kept in memory.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

STORE_FILE = "vector_store.json"
FILES_FILE = "vector_store_files.json"
DAY = 86_400
_locks: dict[Path, threading.RLock] = {}
_locks_lock = threading.Lock()
_active: dict[Path, int] = {}  # last_active_at kept in memory: indexes without vector_store.json, failed writes
log = logging.getLogger("semsearch.vector_stores")


@dataclass(frozen=True)
class StoreState:
    """A vector store's own fields (an index without `vector_store.json` gets these defaults)."""

    name: str
    created_at: int
    last_active_at: int
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    expires_after: dict[str, Any] | None = None  # {"anchor": "last_active_at", "days": n}
    created_over_v1: bool = False  # only these may be deleted over /v1

    @property
    def expires_at(self) -> int | None:
        return self.last_active_at + self.expires_after["days"] * DAY if self.expires_after else None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


@dataclass(frozen=True)
class FileRecord:
    """One vector-store file that came through /v1/files: its document, status and how it was chunked."""

    id: str
    created_at: int
    filename: str
    status: str  # in_progress | completed | failed | cancelled
    max_tokens: int
    overlap_tokens: int
    attributes: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # the document's path in the catalog, once ingested
    last_error: dict[str, str] | None = None
    usage_bytes: int = 0
    batch_id: str | None = None


@dataclass(frozen=True)
class BatchRecord:
    """A file batch: its files (by id) and whether it was cancelled."""

    id: str
    created_at: int
    file_ids: tuple[str, ...]
    cancelled: bool = False
    counts: dict[str, int] | None = None  # frozen when one of its files is attached again by a later request


@dataclass(frozen=True)
class FilesState:
    files: dict[str, FileRecord]
    batches: dict[str, BatchRecord]


def lock(folder: Path) -> threading.RLock:
    """The lock of one store's state files (shared by every thread of this process)."""
    with _locks_lock:
        return _locks.setdefault(folder.resolve(), threading.RLock())


def default_state(name: str, created_iso: str) -> StoreState:
    """The state of an index made another way (CLI, POST /indexes): its name, its manifest's creation time."""
    created = _timestamp(created_iso)
    return StoreState(name=name, created_at=created, last_active_at=created)


def read_store(folder: Path, default: StoreState) -> StoreState:
    """The store's state, or `default` if it has none (last active when this process last saw it used)."""
    raw = _read_json(folder / STORE_FILE)
    state = default if raw is None else StoreState(**raw)
    active = _active.get(folder.resolve(), 0)
    return replace(state, last_active_at=active) if active > state.last_active_at else state


def write_store(folder: Path, state: StoreState) -> None:
    _write_json(folder / STORE_FILE, asdict(state))


def read_files(folder: Path) -> FilesState:
    raw = _read_json(folder / FILES_FILE) or {}
    files = {k: FileRecord(**v) for k, v in raw.get("files", {}).items()}
    batches = {k: BatchRecord(**{**v, "file_ids": tuple(v["file_ids"])}) for k, v in raw.get("batches", {}).items()}
    return FilesState(files, batches)


@contextmanager
def editing_files(folder: Path) -> Iterator[FilesState]:
    """Read the files' state, let the caller change its dicts in place, write it back (under the folder's lock)."""
    with lock(folder):
        state = read_files(folder)
        yield state
        raw = {
            "files": {k: asdict(v) for k, v in state.files.items()},
            "batches": {k: asdict(v) for k, v in state.batches.items()},
        }
        _write_json(folder / FILES_FILE, raw)


def update_file(folder: Path, file_id: str, change: Callable[[FileRecord], FileRecord]) -> FileRecord | None:
    """Apply `change` to one file's record (None if the store no longer has it)."""
    with editing_files(folder) as state:
        record = state.files.get(file_id)
        if record is not None:
            record = state.files[file_id] = change(record)
        return record


def touch(folder: Path, state: StoreState, now: int, *, every: int = 60) -> StoreState:
    """Stamp `last_active_at` (at most once a minute, so searches do not rewrite the file each time), in
    `vector_store.json` if the index has one, else in memory; a write that fails is logged, never raised."""
    if now - state.last_active_at < every:
        return state
    key = folder.resolve()
    with lock(folder):
        fresh = replace(read_store(folder, state), last_active_at=now)
        if not (folder / STORE_FILE).is_file():
            _active[key] = now
            return fresh
        try:
            write_store(folder, fresh)
        except OSError as exc:
            if key not in _active:  # once per folder, not once a minute
                log.warning("cannot record when vector store %s was last active: %s", folder.name, exc)
            _active[key] = now
        return fresh


def _timestamp(iso: str) -> int:
    try:
        return int(datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return int(time.time())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as out:
            out.write(json.dumps(value, ensure_ascii=False).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
