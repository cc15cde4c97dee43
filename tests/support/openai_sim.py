"""An OpenAI-protocol server of our own, for tests and benchmarks: embeddings, chat, moderations, models,
and files and batches (`openai_sim_batches.py`).

`create_simulator(config)` builds a FastAPI app that answers like api.openai.com, failures included:
bad keys, RPM/TPM limits with OpenAI's headers, and scheduled faults (5xx, 429, dropped connections,
bodies that are not JSON or do not match the request). Its state is `app.state.sim` (`SimulatorState`).
The rules without HTTP (config, limits, faults, vectors, validation) live in `openai_sim_state.py`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from tests.support.openai_sim_state import (
    ApiError,
    RateDecision,
    SimulatorConfig,
    SimulatorState,
    check_context,
    check_model,
    echo_reply,
    embedding_size,
    encoding_format,
    estimate_tokens,
    format_duration,
    input_texts,
    moderation_result,
    rate_limited,
    simulated_embedding,
)

__all__ = [
    "SimulatorConfig",
    "SimulatorState",
    "create_simulator",
    "estimate_tokens",
    "format_duration",
    "simulated_embedding",
]

DEFAULT_MODELS = (
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    "gpt-4o",
    "gpt-4o-mini",
    "omni-moderation-latest",
)
_SERVER_ERRORS = {
    "500": "The server had an error while processing your request. Sorry about that!",
    "502": "Bad gateway.",
    "503": "The engine is currently overloaded, please try again later.",
}
_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_CLEAN_FAULTS = {"ok", "slow", "shuffled", "no_base64"}  # faults whose answer is still correct
_TRUNCATED_JSON = b'{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.01,'
router = APIRouter()


def create_simulator(config: SimulatorConfig | None = None) -> FastAPI:
    """The simulator app; serve it with `ServerThread` and inspect `app.state.sim`.

    Every request reads `app.state.sim`, so assigning a fresh `SimulatorState` reconfigures a running server.
    """
    app = FastAPI(title="semsearch OpenAI simulator")
    app.state.sim = SimulatorState(config or SimulatorConfig())
    app.include_router(router)
    from tests.support.openai_sim_batches import router as batches  # it builds on this module's handlers

    app.include_router(batches)
    return app


def reconfigure(app: FastAPI, **fields: Any) -> SimulatorState:
    """A fresh state (calls, files, batches) with these config fields, installed on a running simulator."""
    app.state.sim = SimulatorState(SimulatorConfig(**fields))
    return app.state.sim  # type: ignore[no-any-return]


@dataclass
class _Call:
    """What the request log records about one request."""

    path: str
    model: str | None = None
    n_inputs: int = 0
    tokens: int = 0
    encoding_format: str | None = None
    fault: str = "ok"


class _DroppedResponse(Response):
    """Promises a body, sends part of it, then returns: uvicorn closes the socket mid-response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": _TRUNCATED_JSON, "more_body": True})


def _sim(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.sim
    return state


Sim = Annotated[SimulatorState, Depends(_sim)]
_Handler = Callable[[dict[str, Any], SimulatorState, _Call], Response]


@router.get("/v1/models")
async def list_models(request: Request, sim: Sim) -> Response:
    """The model list; faults never hit it, so a client's start-up check does not use up the schedule."""
    sim.requests += 1
    try:
        _authenticate(request, sim.config)
    except ApiError as error:
        return _error_response(error)
    await asyncio.sleep(sim.config.latency)
    models = [
        {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
        for name in sim.config.models or DEFAULT_MODELS
    ]
    return JSONResponse({"object": "list", "data": models})


@router.post("/v1/embeddings")
async def embeddings(request: Request, sim: Sim) -> Response:
    """Vectors of one string or a batch of strings."""
    return await _serve(request, sim, _embed)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, sim: Sim) -> Response:
    """A scripted or echoing chat reply, whole or streamed as server-sent events."""
    return await _serve(request, sim, _chat, record=True)


@router.post("/v1/rerank")
async def rerank(request: Request, sim: Sim) -> Response:
    """A Cohere/Jina-style rerank endpoint, as vLLM and TEI serve it."""
    return await _serve(request, sim, _rerank)


@router.post("/v1/moderations")
async def moderations(request: Request, sim: Sim) -> Response:
    """Flags inputs containing one of `config.flagged_words`."""
    return await _serve(request, sim, _moderate)


async def _serve(request: Request, sim: SimulatorState, handler: _Handler, *, record: bool = False) -> Response:
    """What every POST endpoint shares: counting, errors as OpenAI bodies, the log, headers, latency."""
    sim.requests += 1
    call = _Call(path=request.url.path)
    try:
        response = await _answer(request, sim, call, handler, record)
    except ApiError as error:
        if error.status == 429 and error.code == "rate_limit_exceeded":
            sim.rejected_429 += 1
        response = _error_response(error)
    sim.requests_log.append(
        {
            "time": time.time(),
            "path": call.path,
            "n_inputs": call.n_inputs,
            "tokens": call.tokens,
            "status": response.status_code,
            "encoding_format": call.encoding_format,
            "model": call.model,
            "fault": call.fault,
        }
    )
    response.headers.update(sim.rate_window.headers(sim.clock()))
    await asyncio.sleep(sim.config.latency)
    return response


async def _answer(request: Request, sim: SimulatorState, call: _Call, handler: _Handler, record: bool) -> Response:
    _authenticate(request, sim.config)
    body = await _json_body(request)
    if record:
        sim.chat_requests.append(body)
    call.model = body.get("model") if isinstance(body.get("model"), str) else None
    call.fault = sim.next_fault()
    _raise_injected_error(call.fault, call.model, sim.config)
    if call.fault == "drop":
        return _DroppedResponse()
    if call.fault == "slow":
        await _pause(request, sim.config.slow_seconds)
    response = handler(body, sim, call)
    if call.fault == "malformed":  # as if a proxy cut the body short: status 200, not JSON
        return Response(_TRUNCATED_JSON, media_type="application/json")
    return response


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body, status_code=error.status, headers=error.headers)


def _authenticate(request: Request, config: SimulatorConfig) -> None:
    if config.api_key is None:
        return
    header = request.headers.get("authorization", "")
    if not header:
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization "
            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or key.strip() != config.api_key:
        raise ApiError(
            401,
            f"Incorrect API key provided: {_mask(key.strip())}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}" if len(key) > 10 else "*" * len(key)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ClientDisconnect:  # a client that timed out before we read its body: log it, do not crash
        raise ApiError(499, "The client closed the connection before sending the whole request.") from None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request. The OpenAI API expects a JSON object.")
    return body


def _raise_injected_error(fault: str, model: str | None, config: SimulatorConfig) -> None:
    if fault in _SERVER_ERRORS:
        raise ApiError(int(fault), _SERVER_ERRORS[fault], kind="server_error")
    if fault == "429":
        raise rate_limited(model, RateDecision("requests", 60, 60, 1, config.retry_after))
    if fault == "quota":  # no retry-after: waiting does not help, paying does
        raise ApiError(429, _QUOTA, kind="insufficient_quota", code="insufficient_quota")
    if fault == "400":
        raise ApiError(400, "Invalid request (a fault injected by the simulator); sending it again will not help.")


async def _pause(request: Request, seconds: float) -> None:
    """Sleep, but stop once the client has hung up, so a timed-out client does not hold the server up."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.05))
        if await request.is_disconnected():
            raise ApiError(499, "The client closed the connection before the answer was ready.")


def _embed(body: dict[str, Any], sim: SimulatorState, call: _Call) -> Response:
    model = check_model(body, sim.config)
    texts = input_texts(body.get("input"))
    call.encoding_format = encoding_format(body, call.fault, sim.config)
    embedding_size(model, body.get("dimensions"), sim.config)  # a bad size is refused before it counts
    call.n_inputs, call.tokens = len(texts), sum(estimate_tokens(text) for text in texts)
    sim.admit(model, call.tokens)
    reply = embedding_reply(body, sim.config, call.fault)
    data = reply["data"]
    if call.fault == "wrong_count":
        data.pop()
    if call.fault == "shuffled":  # indexes stay right: a client that sorts by index is fine
        data.reverse()
    if call.fault in _CLEAN_FAULTS:
        sim.inputs_embedded.update(set(texts))
    return JSONResponse(reply)


def embedding_reply(body: dict[str, Any], config: SimulatorConfig, fault: str = "ok") -> dict[str, Any]:
    """The body `/v1/embeddings` answers to `body` (a batch's output line carries the same); ApiError if invalid."""
    model = check_model(body, config)
    texts = input_texts(body.get("input"))
    fmt = encoding_format(body, fault, config)
    size = embedding_size(model, body.get("dimensions"), config) + (1 if fault == "wrong_dimension" else 0)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(simulated_embedding(text, size), fmt)}
        for i, text in enumerate(texts)
    ]
    tokens = sum(estimate_tokens(text) for text in texts)
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encode(vector: npt.NDArray[np.float32], fmt: str) -> list[float] | str:
    """OpenAI's base64 is the raw little-endian float32 bytes."""
    if fmt == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def _chat(body: dict[str, Any], sim: SimulatorState, call: _Call) -> Response:
    model = check_model(body, sim.config)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "'messages' must be a non-empty array of message objects.", param="messages")
    prompt = sum(estimate_tokens(_content(message)) for message in messages)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    completion_room = limit if isinstance(limit, int) else 0
    check_context(prompt, completion_room, sim.config.context_window)
    call.n_inputs, call.tokens = len(messages), prompt + completion_room  # OpenAI's TPM counts max_tokens too
    sim.admit(model, call.tokens)
    question = next((_content(m) for m in reversed(messages) if m.get("role") == "user"), "")
    reply = sim.chat_replies.popleft() if sim.chat_replies else echo_reply(question)
    completion = estimate_tokens(reply)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if body.get("stream"):
        options = body.get("stream_options")
        with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return StreamingResponse(_chunks(model, reply, usage if with_usage else None), media_type="text/event-stream")
    message = {"role": "assistant", "content": reply, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    return JSONResponse({**_envelope(model, "chat.completion"), "choices": [choice], "usage": usage})


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: only the text ones count
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def _envelope(model: str, kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_simulator",
    }


async def _chunks(model: str, reply: str, usage: dict[str, int] | None) -> AsyncIterator[str]:
    """Server-sent events as OpenAI streams them: role, content pieces, finish, optional usage, [DONE]."""
    head = {**_envelope(model, "chat.completion.chunk"), **({"usage": None} if usage else {})}
    pieces = re.split(r"(?<=\s)(?=\S)", reply)  # word by word, whitespace kept: joined, they are the reply
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
    deltas += [{"content": piece} for piece in pieces if piece]
    for delta in deltas:
        yield _event({**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]})
    yield _event({**head, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
    if usage:
        yield _event({**head, "choices": [], "usage": usage})
    yield "data: [DONE]\n\n"


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


def _moderate(body: dict[str, Any], sim: SimulatorState, call: _Call) -> Response:
    model = check_model(body, sim.config, default="omni-moderation-latest")
    texts = input_texts(body.get("input"))
    call.n_inputs, call.tokens = len(texts), sum(estimate_tokens(text) for text in texts)
    sim.admit(model, call.tokens)
    results = [moderation_result(text, sim.config.flagged_words) for text in texts]
    return JSONResponse({"id": f"modr-{uuid.uuid4().hex[:24]}", "model": model, "results": results})


def _rerank(body: dict[str, Any], sim: SimulatorState, call: _Call) -> Response:
    """Scores: the share of the query's words found in each document (deterministic, meaningful)."""
    query, documents = str(body.get("query") or ""), input_texts(body.get("documents"))
    call.n_inputs, call.tokens = (
        len(documents),
        estimate_tokens(query) * len(documents) + sum(estimate_tokens(d) for d in documents),
    )
    sim.admit(str(body.get("model") or "rerank"), call.tokens)
    words = set(query.lower().split())
    scores = [len(words & set(d.lower().split())) / max(len(words), 1) for d in documents]
    order = sorted(range(len(documents)), key=lambda i: -scores[i])[: int(body.get("top_n") or len(documents))]
    return JSONResponse(
        {"model": body.get("model"), "results": [{"index": i, "relevance_score": scores[i]} for i in order]}
    )
