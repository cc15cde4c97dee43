"""The simulator's Files and Batch APIs: `/v1/files` and `/v1/batches`, as api.openai.com answers them.

What a batch goes through is `openai_sim_batch_jobs.py`. Every route checks the key and takes the
scheduled faults (errors; `drop`: the request is carried out, the reply cut off) and the RPM window as
the simulator's other routes do.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from tests.support.openai_sim import _authenticate, _DroppedResponse, _error_response, _raise_injected_error
from tests.support.openai_sim_batch_jobs import SimBatch, SimFile, advance, enter, new_id
from tests.support.openai_sim_state import ApiError, SimulatorState

router = APIRouter()
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


def _sim(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    return state


async def _serve(request: Request, handler: Callable[[SimulatorState], Awaitable[Response]]) -> Response:
    """Key, faults, RPM and the request log, as on the simulator's other routes."""
    sim = _sim(request)
    sim.requests += 1
    try:
        _authenticate(request, sim.config)
        fault = sim.next_fault()
        _raise_injected_error(fault, None, sim.config)
        sim.admit(None, 0)
        response = await handler(sim)
        if fault == "drop":  # done, but the reply is lost: a client must not assume it failed
            response = _DroppedResponse()
    except ApiError as error:
        response = _error_response(error)
    sim.requests_log.append({"time": time.time(), "path": request.url.path, "status": response.status_code})
    response.headers.update(sim.rate_window.headers(sim.clock()))
    return response


def _file(sim: SimulatorState, file_id: str) -> SimFile:
    found: SimFile | None = sim.files.get(file_id)
    if found is None:
        raise ApiError(404, f"No such File object: {file_id}", param="id")
    return found


def _batch(sim: SimulatorState, batch_id: str) -> SimBatch:
    found: SimBatch | None = sim.batches.get(batch_id)
    if found is None:
        raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
    return found


@router.post("/v1/files")
async def upload_file(request: Request) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        async with request.form() as form:  # closes the spooled upload
            upload, purpose = form.get("file"), form.get("purpose")
            if upload is None or isinstance(upload, str):
                raise ApiError(400, "'file' is a required property", param="file")
            if purpose not in PURPOSES:
                raise ApiError(400, f"'{purpose}' is not one of {list(PURPOSES)} - 'purpose'", param="purpose")
            stored = SimFile(new_id("file-"), upload.filename or "upload", str(purpose), await upload.read())
        sim.files[stored.id] = stored
        return JSONResponse(stored.as_dict())

    return await _serve(request, handle)


@router.get("/v1/files")
async def list_files(request: Request) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        data = [f.as_dict() for f in sorted(sim.files.values(), key=lambda f: f.created_at, reverse=True)]
        return JSONResponse({"object": "list", "data": data, "has_more": False})

    return await _serve(request, handle)


@router.get("/v1/files/{file_id}")
async def retrieve_file(request: Request, file_id: str) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        return JSONResponse(_file(sim, file_id).as_dict())

    return await _serve(request, handle)


@router.get("/v1/files/{file_id}/content")
async def file_content(request: Request, file_id: str) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        return Response(_file(sim, file_id).data, media_type="application/octet-stream")

    return await _serve(request, handle)


@router.delete("/v1/files/{file_id}")
async def delete_file(request: Request, file_id: str) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        _file(sim, file_id)
        del sim.files[file_id]
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    return await _serve(request, handle)


@router.post("/v1/batches")
async def create_batch(request: Request) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        body = await _json(request)
        source = _file(sim, str(body.get("input_file_id")))
        if source.purpose != "batch":
            raise ApiError(400, f"File {source.id} must be uploaded with purpose 'batch'.", param="input_file_id")
        if source.expires_at is not None and source.expires_at <= time.time():
            raise ApiError(400, f"File {source.id} has expired.", param="input_file_id")
        if body.get("endpoint") != "/v1/embeddings":
            raise ApiError(400, "The simulator runs /v1/embeddings batches only.", param="endpoint")
        if body.get("completion_window") != "24h":
            raise ApiError(400, "Invalid 'completion_window': only '24h' is supported.", param="completion_window")
        outcomes = sim.config.batch_outcomes
        outcome = outcomes[sim.batches_created] if sim.batches_created < len(outcomes) else "completed"
        batch = SimBatch(new_id("batch_"), source.id, "/v1/embeddings", body.get("metadata"), outcome)
        sim.batches[batch.id] = batch
        sim.batches_created += 1
        return JSONResponse(batch.as_dict())

    return await _serve(request, handle)


@router.get("/v1/batches")
async def list_batches(request: Request) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        newest = sorted(sim.batches.values(), key=lambda b: b.created_at, reverse=True)
        after, limit = request.query_params.get("after"), int(request.query_params.get("limit") or 20)
        if after is not None:
            ids = [b.id for b in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        page = newest[:limit]
        data = [b.as_dict() for b in page]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(newest) > limit,
            }
        )

    return await _serve(request, handle)


@router.get("/v1/batches/{batch_id}")
async def retrieve_batch(request: Request, batch_id: str) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        batch = _batch(sim, batch_id)
        advance(batch, sim)
        return JSONResponse(batch.as_dict())

    return await _serve(request, handle)


@router.post("/v1/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str) -> Response:
    async def handle(sim: SimulatorState) -> Response:
        batch = _batch(sim, batch_id)
        if batch.status not in ("validating", "in_progress", "finalizing"):
            raise ApiError(409, f"Cannot cancel a batch with status '{batch.status}'.")
        enter(batch, "cancelling")
        return JSONResponse(batch.as_dict())

    return await _serve(request, handle)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request. The OpenAI API expects a JSON object.")
    return body
