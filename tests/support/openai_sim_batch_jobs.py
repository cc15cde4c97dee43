"""The simulator's batches without HTTP: files, batches, and a batch's life from validation to its output.

A batch is validated as OpenAI does (JSONL lines with unique `custom_id`, `method` POST, the batch's `url`;
at most 50,000 requests and 50,000 embedding inputs); its status advances as the client polls
(`SimulatorConfig.batch_polls`, `batch_seconds`): validating -> in_progress -> finalizing -> completed, or
failed (with `errors`), expired (the lines not done go to the error file as `batch_expired`), cancelling ->
cancelled (likewise). Each output line's body is exactly what `/v1/embeddings` answers to that request.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.openai_sim import embedding_reply
from tests.support.openai_sim_state import ApiError, SimulatorState

MAX_REQUESTS = 50_000
MAX_EMBEDDING_INPUTS = 50_000


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


@dataclass
class SimFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))
    expires_at: int | None = None  # a test may let a file expire: a batch is no longer created over it

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": self.expires_at,
            "status_details": None,
        }


@dataclass(frozen=True)
class _Result:
    """A batch request run: whether it went well, its custom_id, its output line and its inputs."""

    ok: bool
    custom_id: str
    line: str
    texts: tuple[str, ...]


@dataclass
class SimBatch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict[str, str] | None
    outcome: str
    status: str = "validating"
    created_at: int = field(default_factory=lambda: int(time.time()))
    times: dict[str, int] = field(default_factory=dict)  # in_progress_at, completed_at, ...
    polls: int = 0  # retrievals in the current status
    since: float = field(default_factory=time.monotonic)
    results: list[_Result] = field(default_factory=list)  # one per request, in order
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        total = len(self.results)
        done = total if self.status in ("finalizing", "completed") else self._done_so_far()
        failed = sum(1 for result in self.results[:done] if not result.ok)
        stamps = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + 86_400,
            **{f"{name}_at": self.times.get(name) for name in stamps},
            "request_counts": {"total": total, "completed": done - failed, "failed": failed},
            "metadata": self.metadata,
            "model": None,
            "usage": None,
        }

    def _done_so_far(self) -> int:
        """Requests done while in progress: a share per poll; cut short where the batch ended early."""
        if self.status == "in_progress":
            return min(len(self.results), self.polls * math.ceil(len(self.results) / 4))
        return len(self.results) // 2 if self.status in ("expired", "cancelled", "cancelling") else 0


def enter(batch: SimBatch, status: str) -> None:
    batch.status, batch.polls, batch.since = status, 0, time.monotonic()
    batch.times[status] = int(time.time())


def advance(batch: SimBatch, sim: SimulatorState) -> None:
    """One retrieval: the batch moves on once polled enough, and long enough, in its status."""
    batch.polls += 1
    config = sim.config
    if batch.polls < config.batch_polls or time.monotonic() - batch.since < config.batch_seconds:
        return
    if batch.status == "validating":
        _validate(batch, sim)
    elif batch.status == "in_progress":
        enter(batch, "expired" if batch.outcome == "expired" else "finalizing")
        if batch.outcome == "expired":
            _write_files(batch, sim, done=len(batch.results) // 2, reason="batch_expired")
    elif batch.status == "finalizing":
        enter(batch, "completed")
        _write_files(batch, sim, done=len(batch.results), reason="")
    elif batch.status == "cancelling":
        enter(batch, "cancelled")
        _write_files(batch, sim, done=len(batch.results) // 2, reason="batch_cancelled")


def _validate(batch: SimBatch, sim: SimulatorState) -> None:
    """Check the input file as OpenAI does; run every request (their answers wait for the end)."""
    lines = [line for line in sim.files[batch.input_file_id].data.decode("utf-8").splitlines() if line.strip()]
    errors: list[dict[str, Any]] = []
    if batch.outcome == "failed":
        errors.append(_batch_error("token_limit_exceeded", "Enqueued token limit reached for this model.", None))
    if len(lines) > MAX_REQUESTS:
        errors.append(_batch_error("too_many_requests", f"{len(lines)} requests; at most {MAX_REQUESTS}.", None))
    requests, inputs = _parse_lines(lines, batch.endpoint, errors)
    if inputs > MAX_EMBEDDING_INPUTS:
        message = f"{inputs} embedding inputs; a batch takes at most {MAX_EMBEDDING_INPUTS}."
        errors.append(_batch_error("too_many_inputs", message, None))
    if errors:
        batch.errors = errors
        enter(batch, "failed")
        return
    batch.results = [_run(number, request, sim) for number, request in enumerate(requests)]
    enter(batch, "in_progress")


def _parse_lines(lines: list[str], endpoint: str, errors: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    requests: list[dict[str, Any]] = []
    seen: set[str] = set()
    inputs = 0
    for number, line in enumerate(lines, 1):
        try:
            request = json.loads(line)
        except ValueError:
            errors.append(_batch_error("invalid_json_line", "This line is not parseable as valid JSON.", number))
            continue
        custom_id = request.get("custom_id") if isinstance(request, dict) else None
        if not isinstance(custom_id, str) or custom_id in seen:
            errors.append(_batch_error("duplicate_custom_id", "custom_id must be a unique string.", number))
            continue
        if request.get("method") != "POST" or request.get("url") != endpoint:
            errors.append(_batch_error("mismatched_endpoint", f"The url must be {endpoint} (POST).", number))
            continue
        seen.add(custom_id)
        body = request.get("body") if isinstance(request.get("body"), dict) else {}
        inputs += len(body["input"]) if isinstance(body.get("input"), list) else 1
        requests.append(request)
    return requests, inputs


def _batch_error(code: str, message: str, line: int | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": line}


def _run(number: int, request: dict[str, Any], sim: SimulatorState) -> _Result:
    """One request of a batch: its output line (or error line), as OpenAI writes them."""
    config = sim.config
    texts: tuple[str, ...] = ()
    try:
        if number in config.batch_failed_lines:
            raise ApiError(500, "The server had an error processing your request.", kind="server_error")
        status, body = 200, embedding_reply(request["body"], config)
        texts = tuple(request["body"]["input"])
    except ApiError as error:
        status, body = error.status, error.body
    custom_id = request["custom_id"]
    response = {"status_code": status, "request_id": new_id("req_"), "body": body}
    line = json.dumps({"id": new_id("batch_req_"), "custom_id": custom_id, "response": response, "error": None})
    if number in config.batch_garbled_lines:
        line = line[: len(line) // 2]
    return _Result(status == 200, custom_id, line, texts)


def _write_files(batch: SimBatch, sim: SimulatorState, *, done: int, reason: str) -> None:
    """The output file (requests that went well) and the error file (the rest, and those not done)."""
    output = [result.line for result in batch.results[:done] if result.ok]
    failed = [result.line for result in batch.results[:done] if not result.ok]
    for result in batch.results[:done]:
        sim.inputs_batched.update(result.texts)
    error = {"code": reason, "message": "This request could not be executed before the batch ended."}
    for result in batch.results[done:]:
        line = {"id": new_id("batch_req_"), "custom_id": result.custom_id, "response": None, "error": error}
        failed.append(json.dumps(line))
    for lines, attribute in ((output, "output_file_id"), (failed, "error_file_id")):
        if lines:
            stored = SimFile(new_id("file-"), f"{batch.id}_{attribute[:-8]}.jsonl", "batch_output", _joined(lines))
            sim.files[stored.id] = stored
            setattr(batch, attribute, stored.id)


def _joined(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")
