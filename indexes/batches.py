"""Embedding batches recorded in an index: what was submitted to a Batch API, and the vectors it delivered.

A batch is recorded (its input file, the text hash of every input of every request line) before it is
polled, so a run killed while waiting is resumed by the next one instead of paid for twice. Its vectors
wait in `batch_vectors` by text hash (kept a part at a time, then the batch is forgotten), where an ingest
finds them (`IndexWriter.batch_vectors`); `tidy`, at the end of every ingest (with or without --batch), drops those
published since, and those nobody took for a week. `batch.lock` keeps two runs from
submitting the same passages; it is not the write lock, so ingests and searches go on while a run waits.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .catalog import Catalog
from .errors import IndexBusy
from .store import LocalIndex

UNCLAIMED_VECTORS_DAYS = 7  # batch vectors no ingest published in this long are dropped
_PART = 500  # hashes per IN (...) query


@dataclass(frozen=True)
class RecordedBatch:
    """A batch submitted for this index and not yet collected; `batch_id` is None until it was created."""

    input_file_id: str
    batch_id: str | None
    status: str
    created_at: float
    requests: int
    inputs: int
    tokens: int


class BatchLedger:
    """The batches recorded in one index, and the vectors they delivered."""

    def __init__(self, index: LocalIndex) -> None:
        self.index = index

    @property
    def _catalog(self) -> Catalog:
        return self.index.catalog()

    @contextmanager
    def locked(self) -> Iterator[BatchLedger]:
        """Hold the index's batch lock (IndexBusy if another run holds it)."""
        fd = os.open(self.index.folder / "batch.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise IndexBusy(
                f"another `ingest --batch` is submitting or polling batches for {self.index.folder}"
            ) from exc
        try:
            yield self
        finally:
            os.close(fd)

    def covered(self, text_hashes: Sequence[str]) -> set[str]:
        """The hashes that need no embedding: stored (published or staged), delivered by a batch, or in one."""
        found: set[str] = set()
        for start in range(0, len(text_hashes), _PART):
            part = list(text_hashes[start : start + _PART])
            marks = ",".join("?" * len(part))
            for table in ("chunks", "staged_chunks", "batch_vectors", "embedding_batch_inputs"):
                rows = self._catalog.rows(f"SELECT DISTINCT text_hash FROM {table} WHERE text_hash IN ({marks})", part)
                found.update(row[0] for row in rows)
        return found

    def record(self, input_file_id: str, requests: Mapping[str, Sequence[str]], tokens: int) -> None:
        """Record an uploaded input file: its request lines (custom_id -> text hashes), before any batch."""
        rows = [(input_file_id, cid, i, h) for cid, hashes in requests.items() for i, h in enumerate(hashes)]
        with self._catalog.transaction(write=True):
            self._catalog.run(
                "INSERT INTO embedding_batches VALUES (?, NULL, 'uploaded', ?, ?, ?, ?)",
                (input_file_id, time.time(), len(requests), len(rows), tokens),
            )
            self._catalog.run_many("INSERT INTO embedding_batch_inputs VALUES (?, ?, ?, ?)", rows)

    def update(self, input_file_id: str, status: str, batch_id: str | None = None) -> None:
        """Record a batch's id (once created) and its last known status."""
        with self._catalog.transaction(write=True):
            self._catalog.run(
                "UPDATE embedding_batches SET status = ?, batch_id = coalesce(?, batch_id) WHERE input_file_id = ?",
                (status, batch_id, input_file_id),
            )

    def open_batches(self) -> list[RecordedBatch]:
        """Every recorded batch not collected yet, oldest first."""
        rows = self._catalog.rows("SELECT * FROM embedding_batches ORDER BY created_at, input_file_id")
        return [RecordedBatch(*row) for row in rows]

    def requests_of(self, input_file_id: str) -> dict[str, list[str]]:
        """A recorded input file's request lines: custom_id -> the text hashes of its inputs, in order."""
        sql = (
            "SELECT custom_id, text_hash FROM embedding_batch_inputs WHERE input_file_id = ? "
            "ORDER BY custom_id, position"
        )
        out: dict[str, list[str]] = {}
        for custom_id, text_hash in self._catalog.rows(sql, (input_file_id,)):
            out.setdefault(custom_id, []).append(text_hash)
        return out

    def keep(self, vectors: Mapping[str, bytes]) -> None:
        """Keep vectors a batch delivered (a part of its output), in one transaction."""
        now = time.time()
        with self._catalog.transaction(write=True):
            self._catalog.run_many(
                "INSERT OR REPLACE INTO batch_vectors VALUES (?, ?, ?)", ((h, v, now) for h, v in vectors.items())
            )

    def forget(self, input_file_id: str) -> None:
        """Forget a batch (collected, or gone): its passages are no longer waited for."""
        with self._catalog.transaction(write=True):
            self._catalog.run("DELETE FROM embedding_batches WHERE input_file_id = ?", (input_file_id,))

    def vectors(self, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Vectors batches delivered for these hashes."""
        return vectors(self._catalog, text_hashes)

    def tidy(self, *, max_age_days: float = UNCLAIMED_VECTORS_DAYS) -> int:
        """Drop batch vectors that are published now, or that no ingest took in `max_age_days`; how many."""
        return tidy(self._catalog, max_age_days=max_age_days)

    def vector_count(self) -> int:
        """How many delivered vectors wait to be published."""
        return int(self._catalog.value("SELECT count(*) FROM batch_vectors"))


def vectors(catalog: Catalog, text_hashes: Sequence[str]) -> dict[str, bytes]:
    """The batch vectors of these hashes, by hash."""
    found: dict[str, bytes] = {}
    for start in range(0, len(text_hashes), _PART):
        part = list(text_hashes[start : start + _PART])
        sql = f"SELECT text_hash, vector FROM batch_vectors WHERE text_hash IN ({','.join('?' * len(part))})"
        found.update(catalog.rows(sql, part))
    return found


def tidy(catalog: Catalog, *, max_age_days: float = UNCLAIMED_VECTORS_DAYS) -> int:
    """Drop the batch vectors published since, or unclaimed for `max_age_days`; how many (no write if none wait)."""
    if catalog.row("SELECT 1 FROM batch_vectors LIMIT 1") is None:
        return 0
    with catalog.transaction(write=True):
        return catalog.run(
            "DELETE FROM batch_vectors WHERE created_at < ? OR text_hash IN (SELECT text_hash FROM chunks)",
            (time.time() - max_age_days * 86_400,),
        )
