"""A client of OpenAI's Files and Batch APIs, as `ingest --batch` uses them.

Upload a JSONL input file (purpose `batch`), create a batch over it (`/v1/embeddings`, 24h), retrieve it,
cancel it, find it again by its input file (a run killed between creating a batch and recording it),
download its output and error files, delete files. Creating a batch is the one request that costs money,
so it is never retried blindly: after a failure the batch is looked for first, and created again only
when the server has none for that input file.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from .errors import QuotaExceeded, UpstreamError, UpstreamRejected
from .openai_client import MalformedResponse, OpenAIClient

ENDPOINT = "/v1/embeddings"
COMPLETION_WINDOW = "24h"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_CREATE_ATTEMPTS = 4
_FIND_PAGES = 10  # pages of 100 batches searched for a lost batch (the newest come first)


@dataclass(frozen=True)
class BatchState:
    """What the server says of a batch."""

    id: str
    input_file_id: str
    status: str
    completed: int = 0
    failed: int = 0
    total: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: tuple[str, ...] = ()  # "code: message (line n)" of a batch that failed as a whole

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def batch_state(reply: dict[str, Any]) -> BatchState:
    """A `batch` object as a `BatchState` (MalformedResponse if it is not one)."""
    if reply.get("object") != "batch" or not isinstance(reply.get("id"), str):
        raise MalformedResponse("not a batch object")
    counts = reply.get("request_counts") or {}
    errors = ((reply.get("errors") or {}).get("data")) or []
    return BatchState(
        id=reply["id"],
        input_file_id=str(reply.get("input_file_id") or ""),
        status=str(reply["status"]),
        completed=int(counts.get("completed") or 0),
        failed=int(counts.get("failed") or 0),
        total=int(counts.get("total") or 0),
        output_file_id=reply.get("output_file_id") or None,
        error_file_id=reply.get("error_file_id") or None,
        errors=tuple(_error_text(e) for e in errors if isinstance(e, dict)),
    )


def _error_text(error: dict[str, Any]) -> str:
    line = f" (line {error['line']})" if error.get("line") is not None else ""
    return f"{error.get('code') or 'error'}: {error.get('message') or ''}{line}"


class BatchClient:
    """Files and batches on one OpenAI-compatible server."""

    def __init__(self, client: OpenAIClient, *, once: OpenAIClient | None = None, pause: float = 1.0) -> None:
        self.client = client
        self.once = once or client  # the same server without retries, to create batches
        self.pause = pause  # seconds between attempts to create a batch

    @classmethod
    def connect(
        cls, base_url: str, api_key: str | None, *, timeout: float, max_retries: int, backoff: float
    ) -> BatchClient:
        """A client of the server at `base_url`, with its own request counts (apart from the embedder's)."""
        client = OpenAIClient(base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff)
        once = OpenAIClient(base_url, api_key, timeout=timeout, max_retries=0)
        return cls(client, once=once, pause=backoff)

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self.client.stats.requests + (self.once.stats.requests if self.once is not self.client else 0)

    def upload(self, name: str, stream: IO[bytes]) -> str:
        """Upload a JSONL input file with purpose `batch`; its file id."""

        def parse(reply: dict[str, Any]) -> str:
            if not isinstance(reply.get("id"), str):
                raise MalformedResponse("the upload reply has no file id")
            return str(reply["id"])

        try:
            return self.client.upload("/files", (name, stream, "application/jsonl"), {"purpose": "batch"}, parse=parse)
        except UpstreamRejected as exc:
            raise _without_batches(exc, self.client.base_url, "POST /files") from exc

    def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchState:
        """Create the batch of an input file, unless the server already has one for it."""
        body = {
            "input_file_id": input_file_id,
            "endpoint": ENDPOINT,
            "completion_window": COMPLETION_WINDOW,
            "metadata": metadata,
        }
        for attempt in range(_CREATE_ATTEMPTS):
            if attempt and (found := self.find(input_file_id)) is not None:
                return found
            try:
                return self.once.post("/batches", body, parse=batch_state)
            except UpstreamRejected as exc:
                raise _without_batches(exc, self.client.base_url, "POST /batches") from exc
            except UpstreamError:
                if attempt == _CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(self.pause * 2**attempt)
        raise AssertionError("unreachable")

    def retrieve(self, batch_id: str) -> BatchState:
        return self.client.get(f"/batches/{batch_id}", parse=batch_state)

    def cancel(self, batch_id: str) -> BatchState:
        return self.client.post(f"/batches/{batch_id}/cancel", {}, parse=batch_state)

    def find(self, input_file_id: str) -> BatchState | None:
        """The newest batch over `input_file_id`, if the server lists one."""
        after: str | None = None
        for _ in range(_FIND_PAGES):
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            page = self.client.get("/batches", params=params, parse=_page)
            for state in page[0]:
                if state.input_file_id == input_file_id:
                    return state
            if not page[1] or not page[0]:
                return None
            after = page[0][-1].id
        return None

    @contextmanager
    def download(self, file_id: str) -> Iterator[IO[bytes]]:
        """A file's content in a temporary file (deleted after), read from its start: an output file may be
        hundreds of MB, so it is written to disk as it arrives."""
        with tempfile.TemporaryFile(prefix="semsearch-batch-output-") as spool:
            self.client.download_to(f"/files/{file_id}/content", spool)
            spool.seek(0)
            yield spool

    def delete_file(self, file_id: str) -> bool:
        """Delete a file; False if the server would not (it is gone already, or refuses)."""
        try:
            self.client.delete(f"/files/{file_id}")
        except UpstreamError:
            return False
        return True

    def close(self) -> None:
        self.client.close()
        if self.once is not self.client:
            self.once.close()


def _page(reply: dict[str, Any]) -> tuple[list[BatchState], bool]:
    data = reply.get("data")
    if not isinstance(data, list):
        raise MalformedResponse("a list without data")
    return [batch_state(item) for item in data], bool(reply.get("has_more"))


def for_good(error: UpstreamRejected) -> bool:
    """A refusal no later run would see otherwise (a file or batch gone or expired, a request refused), unlike
    one the user can fix (the key, the quota): the batch is forgotten rather than failing every run."""
    return error.status not in (401, 403) and not isinstance(error, QuotaExceeded)


def _without_batches(error: UpstreamRejected, base_url: str, route: str) -> UpstreamRejected:
    """A 404/405 means the server has no Batch API: say so, and what to do instead."""
    if error.status not in (404, 405):
        return error
    return UpstreamRejected(
        f"{base_url} has no Batch API ({route} answered HTTP {error.status}); ingest without --batch",
        status=error.status,
        code=error.code,
    )
