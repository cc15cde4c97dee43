"""The write lock of an index folder, whatever its store: one writer per index on this host."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import IndexBusy

WRITE_LOCK = "write.lock"


def hold_write_lock(folder: Path, wait: float) -> int:
    """Hold `write.lock` in the index folder (flock), waiting up to `wait` seconds; IndexBusy if another holds it.
    Returns the descriptor: closing it lets the lock go."""
    fd = os.open(folder / WRITE_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError as exc:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise IndexBusy(f"another ingest is writing to {folder}; wait for it to finish") from exc
            time.sleep(0.05)
