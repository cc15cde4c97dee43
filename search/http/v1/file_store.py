"""OpenAI's File objects on disk: bytes content-addressed, one small JSON record per file object.

    <folder>/<sha256>/<name>     the bytes (the same bytes under the same name are stored once)
    <folder>/objects/<id>.json   one file object: id, bytes, created_at, filename, purpose, sha256

Both are written to a temporary file, synced and renamed into place, bytes first, so a crash leaves
at most stored bytes that no object names (removed when the next store reads the folder), never a
listed object without its bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from indexes import IndexNotFound

from .pages import cursor_page, forget

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class FileObject:
    """One uploaded file as OpenAI describes it (`created_ns` orders files created in the same second)."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    sha256: str
    status: str = "processed"
    created_ns: int = 0
    expires_at: int | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def as_dict(self) -> dict[str, Any]:
        """OpenAI's `file` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "expires_at": self.expires_at,
            "status_details": None,
        }


class FileNotFound(IndexNotFound):
    """No file with that id (a 404, NotFoundError in OpenAI's clients)."""


def safe_name(filename: str) -> str:
    """The name a file is stored under: its last path part, without characters file systems may refuse."""
    return _SAFE_NAME.sub("_", Path(filename).name).strip() or "upload"


def store_content(root: Path, filename: str, data: bytes, *, under: str | None = None) -> Path:
    """Content-addressed storage: the same bytes under the same name land at `<root>/<sha256>/<name>`
    (`<root>/<sha256>/<under>/<name>` if `under` is given: a copy of its own for one owner).

    Written to a temporary file, synced and renamed into place; raises OSError, leaving nothing behind.
    """
    folder = root / hashlib.sha256(data).hexdigest()
    target = (folder / safe_name(under) if under else folder) / safe_name(filename)
    if target.is_file():
        return target
    tmp = target.with_name(f".upload.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_synced(tmp, data)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        for made in (target.parent, folder):
            with contextlib.suppress(OSError):
                made.rmdir()  # only if nothing else is stored there
        raise
    return target


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


class FileStore:
    """The server's files (`/v1/files`), kept under one folder; safe to share between threads.

    The records are read once, on first use, and kept in memory: one FileStore per folder and process.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._objects = folder / "objects"
        self._lock = threading.RLock()  # a delete must not remove bytes an add is about to name
        self._table: dict[str, FileObject] | None = None
        self._names: Counter[Path] = Counter()  # how many file objects name each stored content
        self._scope = f"files:{folder}"  # cursors of this store's list

    def add(self, filename: str, data: bytes, purpose: str, *, expires_after: int | None = None) -> FileObject:
        """Store the bytes (once per content and name) and record a new file object for them.

        With `expires_after` (seconds), the file is gone that long after its creation.
        """
        now = time.time_ns()
        digest = hashlib.sha256(data).hexdigest()
        expires = None if expires_after is None else now // 10**9 + expires_after
        file_id, created = "file-" + secrets.token_hex(12), now // 10**9
        record = FileObject(file_id, len(data), created, filename, purpose, digest, created_ns=now, expires_at=expires)
        with self._lock:
            self._loaded()  # its first read removes bytes no record names: never those of an add in flight
        try:
            stored: Path | None = store_content(self.folder, filename, data)  # the slow part, outside the lock
        except OSError:
            stored = None  # a delete of the same content removed its folder meanwhile: store it again below
        with self._lock:
            table = self._loaded()
            if stored is None or not stored.is_file():  # a delete of the same content took it meanwhile
                store_content(self.folder, filename, data)
            try:
                self._write_record(record)
            except OSError:
                if not self._names[self._bytes(record)]:
                    self._drop_bytes(record)
                raise
            table[record.id] = record
            self._names[self._bytes(record)] += 1
        return record

    def get(self, file_id: str) -> FileObject:
        """The file object with that id, or FileNotFound."""
        with self._lock:
            found = self._loaded().get(file_id)
        if found is None or found.expired(time.time()):
            raise FileNotFound(f"no file {file_id!r}: list the files with GET /v1/files")
        return found

    def path(self, file_id: str) -> Path:
        """Where the file's bytes are."""
        return self._bytes(self.get(file_id))

    def page(
        self, *, purpose: str | None, limit: int, order: str, after: str | None, before: str | None = None
    ) -> tuple[list[FileObject], bool]:
        """A cursor page of files (newest first unless `order` is "asc"), of one purpose if given; more after?"""
        return cursor_page(
            self.all(),
            scope=self._scope,
            position=_position,
            limit=limit,
            order=order,
            after=after,
            before=before,
            keep=None if purpose is None else lambda r: r.purpose == purpose,
        )

    def all(self) -> list[FileObject]:
        """Every file object (expired ones are removed now), in no particular order."""
        now = time.time()
        with self._lock:
            for record in [r for r in self._loaded().values() if r.expired(now)]:
                self._forget(record)
            return list(self._loaded().values())

    def delete(self, file_id: str) -> bool:
        """Forget a file object, and its bytes unless another file object names the same ones; False if unknown."""
        with self._lock:
            record = self._loaded().get(file_id)
            if record is None:
                return False
            self._forget(record)
        return True

    def _forget(self, record: FileObject) -> None:
        self._record(record.id).unlink(missing_ok=True)
        del self._loaded()[record.id]
        forget(self._scope, _position(record))
        path = self._bytes(record)
        self._names[path] -= 1
        if self._names[path] <= 0:
            del self._names[path]
            self._drop_bytes(record)

    def _drop_bytes(self, record: FileObject) -> None:
        path = self._bytes(record)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # gone once empty

    def _loaded(self) -> dict[str, FileObject]:
        """The records, read on first use, when bytes no record names are removed (a killed writer's)."""
        if self._table is None:
            records = [self._read(p) for p in self._objects.glob("*.json")] if self._objects.is_dir() else []
            self._table = {r.id: r for r in records if r is not None}
            self._names = Counter(self._bytes(r) for r in self._table.values())
            self._remove_orphans()
        return self._table

    def _remove_orphans(self) -> None:
        for folder in self.folder.iterdir() if self.folder.is_dir() else ():
            if folder == self._objects or not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.startswith(".") or path not in self._names:
                    with contextlib.suppress(OSError):
                        path.unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()
        for tmp in self._objects.glob(".*.tmp") if self._objects.is_dir() else ():
            tmp.unlink(missing_ok=True)

    def _write_record(self, record: FileObject) -> None:
        self._objects.mkdir(parents=True, exist_ok=True)
        tmp = self._objects / f".{record.id}.json.tmp"
        try:
            _write_synced(tmp, json.dumps(asdict(record)).encode())
            os.replace(tmp, self._record(record.id))
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def _bytes(self, record: FileObject) -> Path:
        return self.folder / record.sha256 / safe_name(record.filename)

    def _record(self, file_id: str) -> Path:
        return self._objects / f"{file_id}.json"

    def _read(self, path: Path) -> FileObject | None:
        try:
            return FileObject(**json.loads(path.read_bytes()))
        except (OSError, ValueError, TypeError):
            return None  # not a record this store wrote (records are renamed into place whole)


def _position(record: FileObject) -> tuple[int, str]:
    return record.created_ns, record.id
