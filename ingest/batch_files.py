"""Batch API files for embeddings: JSONL request lines in, vectors out.

A request line is a `/v1/embeddings` body with several inputs (as the synchronous path sends them, base64
vectors included); an input file stays within OpenAI's limits for an embeddings batch: 50,000 request lines,
200 MB and 50,000 embedding inputs in all. Lines are written to a temporary file, not kept in memory; an output
file is read a line at a time from one, its vectors handed on a part at a time. An output line whose vectors do
not check out (count, order, size) counts as undelivered, like an error line.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from .batch_api import ENDPOINT
from .openai_client import MalformedResponse
from .openai_models import MAX_TOKENS_PER_REQUEST

MAX_FILE_BYTES = 200 * 10**6
MAX_FILE_REQUESTS = 50_000
MAX_BATCH_INPUTS = 50_000  # embedding inputs across all the requests of one batch
REQUEST_INPUTS = 128  # inputs per request line: a failed line costs a fallback of this many at most
VECTORS_PER_PART = 2_000  # delivered vectors handed to the index at a time (each part its own transaction)

ParseVectors = Callable[[dict[str, Any], int], list[np.ndarray]]
Keep = Callable[[dict[str, bytes]], None]  # takes a part of the delivered vectors, by text hash


@dataclass
class RequestFile:
    """A JSONL input file being written: its lines, and each line's custom_id -> the text hashes of its inputs."""

    stream: IO[bytes] = field(default_factory=lambda: _spool())
    requests: dict[str, list[str]] = field(default_factory=dict)
    inputs: int = 0
    tokens: int = 0
    size: int = 0

    def close(self) -> None:
        self.stream.close()


def _spool() -> IO[bytes]:
    """A temporary file for an input file's lines (closed, and so deleted, once uploaded)."""
    return tempfile.TemporaryFile(prefix="semsearch-batch-")  # noqa: SIM115 - it outlives this function


class RequestFiles:
    """Packs inputs into request lines and lines into input files; `add` returns each file once full."""

    def __init__(self, model: str, dimensions: int | None, *, max_inputs: int = MAX_BATCH_INPUTS) -> None:
        self.model, self.dimensions = model, dimensions
        self.max_inputs = min(max_inputs, MAX_BATCH_INPUTS)
        self.line_inputs = min(REQUEST_INPUTS, self.max_inputs)
        self.file = RequestFile()
        self.line: list[tuple[str, str, int]] = []  # (hash, text, tokens)
        self.line_tokens = 0
        self.lines_written = 0  # across files: custom ids stay unique within an index's batches of one run

    def add(self, text_hash: str, text: str, tokens: int) -> list[RequestFile]:
        """Queue one input; the input files this filled."""
        full: list[RequestFile] = []
        if self.line and (len(self.line) >= self.line_inputs or self.line_tokens + tokens > MAX_TOKENS_PER_REQUEST):
            full += self._write_line()
        self.line.append((text_hash, text, tokens))
        self.line_tokens += tokens
        return full

    def finish(self) -> list[RequestFile]:
        """Write the last line; the last input file, if it has any line."""
        full = self._write_line() if self.line else []
        if self.file.requests:
            full.append(self.file)
            self.file = RequestFile()
        return full

    def _write_line(self) -> list[RequestFile]:
        custom_id = f"semsearch-{self.lines_written:07d}"
        body: dict[str, Any] = {"model": self.model, "input": [t for _, t, _ in self.line], "encoding_format": "base64"}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        request = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
        data = (json.dumps(request, ensure_ascii=False) + "\n").encode("utf-8")
        full: list[RequestFile] = []
        current = self.file
        if current.requests and (
            current.inputs + len(self.line) > self.max_inputs
            or len(current.requests) >= MAX_FILE_REQUESTS
            or current.size + len(data) > MAX_FILE_BYTES
        ):
            full.append(current)
            self.file = current = RequestFile()
        current.stream.write(data)
        current.requests[custom_id] = [h for h, _, _ in self.line]
        current.inputs += len(self.line)
        current.tokens += self.line_tokens
        current.size += len(data)
        self.lines_written += 1
        self.line, self.line_tokens = [], 0
        return full

    def close(self) -> None:
        """Let go of the input file being written (after `finish`, an empty one)."""
        self.file.close()


@dataclass
class Delivered:
    """What a finished batch's output and error files held for us (its vectors went to `keep` as they came)."""

    vectors: int = 0  # delivered, by distinct text hash
    tokens: int = 0  # billed for the lines that succeeded
    failed_lines: int = 0  # error lines, and output lines we could not use
    first_error: str = ""


def read_output(
    lines: Iterable[bytes],
    requests: dict[str, list[str]],
    parse: ParseVectors,
    into: Delivered,
    keep: Keep,
    *,
    part: int = VECTORS_PER_PART,
) -> None:
    """Hand `keep` the vectors of every usable output line (a line answers one recorded request), `part` at a
    time: read line by line, an output file of hundreds of MB is never in memory whole."""
    vectors: dict[str, bytes] = {}
    for raw in lines:
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            hashes = requests[item["custom_id"]]
            response = item.get("response") or {}
            if response.get("status_code") != 200 or item.get("error"):
                into.failed_lines += 1
                into.first_error = into.first_error or _error_message(item)
                continue
            body = response["body"]
            parsed = parse(body, len(hashes))
        except (ValueError, KeyError, TypeError, AttributeError, MalformedResponse) as exc:
            into.failed_lines += 1
            into.first_error = into.first_error or f"an unusable output line ({type(exc).__name__})"
            continue
        usage = body.get("usage") or {}
        into.tokens += int(usage.get("total_tokens") or usage.get("prompt_tokens") or 0)
        for text_hash, vector in zip(hashes, parsed):
            vectors[text_hash] = np.asarray(vector, dtype="<f4").tobytes()
        if len(vectors) >= part:
            vectors = _hand_over(vectors, into, keep)
    if vectors:
        _hand_over(vectors, into, keep)


def _hand_over(vectors: dict[str, bytes], into: Delivered, keep: Keep) -> dict[str, bytes]:
    """Give `keep` a part; a new one to fill."""
    keep(vectors)
    into.vectors += len(vectors)
    return {}


def read_errors(lines: Iterable[bytes], into: Delivered) -> None:
    """Count the error file's lines and keep the first message."""
    for raw in lines:
        if not raw.strip():
            continue
        into.failed_lines += 1
        if not into.first_error:
            try:
                into.first_error = _error_message(json.loads(raw))
            except ValueError:
                into.first_error = "an unreadable error line"


def _error_message(item: Any) -> str:
    """The message of an error line: `error`, else the error body of its response."""
    if not isinstance(item, dict):
        return "an unreadable error line"
    error = item.get("error") or ((item.get("response") or {}).get("body") or {}).get("error") or {}
    if isinstance(error, dict):
        return f"{error.get('code') or error.get('type') or 'error'}: {error.get('message') or ''}".strip()
    return str(error)
