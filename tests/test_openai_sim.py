"""The OpenAI simulator on a real uvicorn server, driven with httpx and with the official `openai` client."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from fastapi import FastAPI
from openai import OpenAI

from tests.support.openai_sim import create_simulator, reconfigure
from tests.support.openai_sim_state import FaultPlan, SimulatorConfig, SimulatorState, estimate_tokens, format_duration
from tests.support.openai_sim_state import simulated_embedding as vector_of

from .conftest import ServerThread

KEY = "sk-test-simulator-key"
Configure = Callable[..., SimulatorState]


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_simulator()


@pytest.fixture(scope="module")
def url(app: FastAPI) -> Iterator[str]:
    with ServerThread(app) as running:
        yield running.url


@pytest.fixture
def configure(app: FastAPI) -> Configure:
    """Installs a fresh state with the given config fields (the API key defaults to KEY) on the shared server."""

    def install(**fields: Any) -> SimulatorState:
        return reconfigure(app, **{"api_key": KEY, **fields})

    return install


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {KEY}"}, timeout=10) as client:
        yield client


@pytest.fixture
def client(url: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def embed(http: httpx.Client, inputs: object, **extra: Any) -> httpx.Response:
    return http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": inputs, **extra})


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


# --- vectors, tokens, durations ------------------------------------------------------------------


def test_simulated_vectors_are_deterministic_unit_vectors_that_rank_by_shared_words() -> None:
    query = vector_of("Who invented the printing press?", 256)
    assert np.array_equal(query, vector_of("who invented the PRINTING press", 256))
    assert query.dtype == np.float32 and abs(float(np.linalg.norm(query)) - 1) < 1e-6
    near = vector_of("Gutenberg invented the printing press around 1440.", 256)
    far = vector_of("Plants turn sunlight into sugar by photosynthesis.", 256)
    assert float(query @ near) > float(query @ far) + 0.3
    assert abs(float(np.linalg.norm(vector_of("  ", 64))) - 1) < 1e-6


def test_token_estimate_and_openai_duration_format() -> None:
    assert [estimate_tokens(t) for t in ("", "hello", "hello world", "The quick brown fox.")] == [1, 1, 2, 5]
    assert [format_duration(s) for s in (0, 0.02, 1, 6.5, 90.5, 360, 3723)] == [
        "0s",
        "20ms",
        "1s",
        "6.5s",
        "1m30.5s",
        "6m0s",
        "1h2m3s",
    ]


def test_unknown_fault_kinds_are_refused_and_random_faults_follow_the_seed() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        SimulatorConfig(faults=("501",))
    plans = [FaultPlan(("400",), 0.5, ("500", "drop"), seed=7) for _ in range(2)]
    sequences = [[plan.next() for _ in range(40)] for plan in plans]
    assert sequences[0] == sequences[1] and sequences[0][0] == "400"  # the schedule first, then random draws
    assert {"ok", "500", "drop"} == set(sequences[0][1:])


# --- embeddings -------------------------------------------------------------------------------


def test_float_base64_and_the_openai_client_give_the_same_vectors(
    configure: Configure, http: httpx.Client, client: OpenAI
) -> None:
    sim = configure()
    texts = ["the printing press", "photosynthesis in plants"]
    floats = embed(http, texts).json()
    encoded = embed(http, texts, encoding_format="base64").json()
    via_sdk = client.embeddings.create(model="text-embedding-3-small", input=texts)
    for i, text in enumerate(texts):
        expected = vector_of(text, 1536)
        assert np.array_equal(np.array(floats["data"][i]["embedding"], dtype=np.float32), expected)
        assert np.array_equal(np.frombuffer(base64.b64decode(encoded["data"][i]["embedding"]), "<f4"), expected)
        assert np.array_equal(np.array(via_sdk.data[i].embedding, dtype=np.float32), expected)
    tokens = estimate_tokens(texts[0]) + estimate_tokens(texts[1])
    assert floats["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens} and floats["object"] == "list"
    # the openai client asks for base64 unless told otherwise, and decodes it itself
    assert [entry["encoding_format"] for entry in sim.requests_log] == ["float", "base64", "base64"]
    assert sim.inputs_embedded == {text: 3 for text in texts}


def test_model_sizes_and_the_dimensions_parameter(configure: Configure, http: httpx.Client) -> None:
    configure(dimensions=48)
    sizes = {
        model: len(http.post("/v1/embeddings", json={"model": model, "input": "x"}).json()["data"][0]["embedding"])
        for model in ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002", "local-model")
    }
    assert sizes == {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
        "local-model": 48,
    }
    assert len(embed(http, "x", dimensions=256).json()["data"][0]["embedding"]) == 256
    ada = http.post("/v1/embeddings", json={"model": "text-embedding-ada-002", "input": "x", "dimensions": 256})
    assert ada.status_code == 400 and error_of(ada)["param"] == "dimensions"
    assert embed(http, "x", dimensions=5000).status_code == 400


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ("", "'$.input' is invalid"),
        (["ok", ""], "'$.input' is invalid"),
        ([], "'$.input' is invalid"),
        ([[1, 2, 3]], "'$.input' is invalid"),
        (["x"] * 2049, "at most 2048"),
        ("word " * 9000, "maximum context length"),
    ],
)
def test_inputs_openai_refuses(configure: Configure, http: httpx.Client, inputs: object, fragment: str) -> None:
    configure()
    response = embed(http, inputs)
    assert response.status_code == 400 and fragment in error_of(response)["message"]
    assert error_of(response)["type"] == "invalid_request_error"


def test_model_allow_list_and_model_listing(configure: Configure, http: httpx.Client) -> None:
    configure(models=("text-embedding-3-small", "gpt-4o-mini"))
    missing = http.post("/v1/embeddings", json={"model": "text-embedding-3-large", "input": "x"})
    assert missing.status_code == 404 and error_of(missing)["code"] == "model_not_found"
    listing = http.get("/v1/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["text-embedding-3-small", "gpt-4o-mini"]
    assert set(listing["data"][0]) == {"id", "object", "created", "owned_by"}


def test_a_body_that_is_not_json_is_a_400(configure: Configure, http: httpx.Client) -> None:
    configure()
    response = http.post("/v1/embeddings", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in error_of(response)["message"]


# --- auth -------------------------------------------------------------------------------------


def test_a_missing_or_wrong_key_is_a_401(configure: Configure, url: str) -> None:
    configure()
    with httpx.Client(base_url=url) as anonymous:
        assert embed(anonymous, "x").status_code == 401
        wrong = anonymous.post(
            "/v1/embeddings", json={"model": "m", "input": "x"}, headers={"authorization": "Bearer sk-wrong-key-123"}
        )
        assert wrong.status_code == 401
        assert error_of(wrong)["code"] == "invalid_api_key" and "sk-wrong" not in error_of(wrong)["message"]
    with (
        OpenAI(base_url=url + "/v1", api_key="sk-other", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.embeddings.create(model="m", input="x")
    assert caught.value.code == "invalid_api_key"


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "error_class", "code"),
    [
        ("500", 500, openai.InternalServerError, None),
        ("502", 502, openai.InternalServerError, None),
        ("503", 503, openai.InternalServerError, None),
        ("429", 429, openai.RateLimitError, "rate_limit_exceeded"),
        ("quota", 429, openai.RateLimitError, "insufficient_quota"),
        ("400", 400, openai.BadRequestError, None),
    ],
)
def test_error_faults_reach_the_openai_client_as_its_status_errors(
    configure: Configure, client: OpenAI, fault: str, status: int, error_class: type[Exception], code: str | None
) -> None:
    sim = configure(faults=(fault,))
    with pytest.raises(error_class) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert isinstance(caught.value, openai.APIStatusError) and caught.value.status_code == status
    assert caught.value.code == code
    assert sim.faults_injected == {fault: 1} and not sim.inputs_embedded
    assert client.embeddings.create(model="text-embedding-3-small", input="x").data  # the schedule is used up


def test_a_429_fault_says_when_to_retry_and_a_quota_429_does_not(configure: Configure, http: httpx.Client) -> None:
    sim = configure(faults=("429", "quota"), retry_after=0.2)
    limited = embed(http, "x")
    assert (limited.headers["retry-after"], limited.headers["retry-after-ms"]) == ("1", "200")
    assert error_of(limited)["type"] == "requests"
    quota = embed(http, "x")
    assert error_of(quota)["type"] == "insufficient_quota" and "retry-after" not in quota.headers
    assert error_of(quota)["message"].startswith("You exceeded your current quota, please check your plan")
    assert sim.rejected_429 == 1


def test_the_openai_client_waits_retry_after_ms_and_also_retries_insufficient_quota(
    configure: Configure, client: OpenAI
) -> None:
    sim = configure(faults=("quota", "429", "ok"), retry_after=0.2)
    began = time.perf_counter()
    client.with_options(max_retries=2).embeddings.create(model="text-embedding-3-small", input="x")
    assert time.perf_counter() - began >= 0.375 + 0.2  # its own backoff (0.5 s less jitter), then the 200 ms asked
    assert [entry["status"] for entry in sim.requests_log] == [429, 429, 200]


def test_a_dropped_connection_is_a_transport_error(configure: Configure, http: httpx.Client, client: OpenAI) -> None:
    sim = configure(faults=("drop", "drop"))
    with pytest.raises(httpx.RemoteProtocolError):
        embed(http, "x")
    with pytest.raises(openai.APIConnectionError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert sim.faults_injected["drop"] == 2 and not sim.inputs_embedded
    assert embed(http, "x").status_code == 200  # the server itself is fine


def test_a_slow_answer_times_the_client_out(configure: Configure, url: str, client: OpenAI) -> None:
    sim = configure(faults=("slow", "slow"), slow_seconds=5.0)
    with (
        httpx.Client(base_url=url, headers={"authorization": f"Bearer {KEY}"}, timeout=0.2) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        embed(impatient, "x")
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).embeddings.create(model="text-embedding-3-small", input="x")
    deadline = time.monotonic() + 2  # the server notices the hang-ups and gives up waiting
    while len(sim.requests_log) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [entry["status"] for entry in sim.requests_log] == [499, 499]


def test_a_client_that_hangs_up_mid_request_is_logged_as_499(configure: Configure, url: str) -> None:
    sim = configure(api_key=None)
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b'content-length: 100\r\n\r\n{"model": '
        )
    deadline = time.monotonic() + 2
    while not sim.requests_log and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [entry["status"] for entry in sim.requests_log] == [499]


def test_bad_200_answers(configure: Configure, http: httpx.Client) -> None:
    sim = configure(faults=("malformed", "wrong_count", "wrong_dimension", "shuffled"))
    texts = ["one", "two", "three"]
    with pytest.raises(json.JSONDecodeError):
        embed(http, texts).json()
    assert len(embed(http, texts).json()["data"]) == 2
    assert {len(item["embedding"]) for item in embed(http, texts).json()["data"]} == {1537}
    shuffled = embed(http, texts).json()["data"]
    assert [item["index"] for item in shuffled] == [2, 1, 0]
    assert np.array_equal(np.array(shuffled[0]["embedding"], dtype=np.float32), vector_of("three", 1536))
    assert sim.inputs_embedded == {text: 1 for text in texts}  # only the shuffled answer was a correct one


def test_the_openai_client_neither_checks_nor_wraps_bad_200_answers(configure: Configure, client: OpenAI) -> None:
    configure(faults=("malformed", "wrong_count", "shuffled"))
    with pytest.raises(json.JSONDecodeError):  # a bare json error, not an openai.APIError
        client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]).data) == 1
    assert [d.index for d in client.embeddings.create(model="text-embedding-3-small", input=["a", "b"]).data] == [1, 0]


def test_a_server_without_base64_breaks_the_openai_client_default(configure: Configure, client: OpenAI) -> None:
    configure(supports_base64=False)
    with pytest.raises(openai.BadRequestError, match="base64 is not supported"):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert client.embeddings.create(model="text-embedding-3-small", input="x", encoding_format="float").data
    configure(faults=("no_base64",))
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def test_latency_is_added_without_serialising_requests(configure: Configure, url: str) -> None:
    configure(latency=0.3)
    statuses: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {KEY}"}) as own:
            statuses.append(embed(own, "x").status_code)

    threads = [threading.Thread(target=one) for _ in range(4)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4 and 0.3 <= time.perf_counter() - began < 0.9


# --- rate limits -------------------------------------------------------------------------------


def test_the_fourth_request_in_a_minute_gets_a_429_with_openai_headers(
    configure: Configure, http: httpx.Client, client: OpenAI
) -> None:
    sim = configure(rpm=3, tpm=10_000)
    remaining = [embed(http, "x").headers["x-ratelimit-remaining-requests"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    headers, error = caught.value.response.headers, caught.value.body
    assert int(headers["retry-after"]) >= 59 and 59_000 <= int(headers["retry-after-ms"]) <= 60_000
    assert headers["x-ratelimit-limit-requests"] == "3" and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-tokens"] == "10000" and headers["x-ratelimit-remaining-tokens"] == "9997"
    assert headers["x-ratelimit-reset-requests"].endswith("s") and "x-ratelimit-reset-tokens" in headers
    assert isinstance(error, dict) and error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert "requests per min (RPM): Limit 3, Used 3, Requested 1" in error["message"]
    assert sim.rejected_429 == 1


def test_the_window_slides_and_retry_after_is_exact(configure: Configure, http: httpx.Client) -> None:
    sim = configure(rpm=2)
    now = [1000.0]
    sim.clock = lambda: now[0]
    for moment in (1000.0, 1010.0):
        now[0] = moment
        assert embed(http, "x").status_code == 200
    now[0] = 1020.0
    refused = embed(http, "x")
    assert (refused.headers["retry-after"], refused.headers["retry-after-ms"]) == ("40", "40000")
    assert refused.headers["x-ratelimit-reset-requests"] == "50s" and "try again in 40s" in error_of(refused)["message"]
    now[0] = 1060.0
    assert embed(http, "x").status_code == 200


def test_tokens_per_minute_bind_and_a_request_bigger_than_the_limit_is_a_400(
    configure: Configure, http: httpx.Client
) -> None:
    configure(tpm=100)
    text = " ".join(["word"] * 51)
    assert estimate_tokens(text) == 51
    assert embed(http, text).status_code == 200
    refused = embed(http, text)
    assert refused.status_code == 429 and error_of(refused)["type"] == "tokens"
    assert "tokens per min (TPM): Limit 100, Used 51, Requested 51" in error_of(refused)["message"]
    assert "retry-after" in refused.headers and refused.headers["x-ratelimit-remaining-tokens"] == "49"
    too_large = embed(http, " ".join(["word"] * 101))
    assert too_large.status_code == 400 and "Request too large" in error_of(too_large)["message"]


# --- chat and moderation -------------------------------------------------------------------------

QUESTION = (
    "Answer from the passages.\n[1] Gutenberg built the printing press in Mainz.\n"
    "[2] Paper came to Europe from China.\n\nQuestion: who built the printing press?"
)


def test_chat_echoes_the_passages_it_was_given(configure: Configure, client: OpenAI) -> None:
    sim = configure()
    messages: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=50)
    text = completion.choices[0].message.content
    assert text == (
        "According to the passages, Gutenberg built the printing press in Mainz [1]; "
        "Paper came to Europe from China [2]."
    )
    assert completion.usage is not None and completion.usage.prompt_tokens == sum(
        estimate_tokens(m["content"]) for m in messages
    )
    assert completion.choices[0].finish_reason == "stop" and completion.object == "chat.completion"
    assert sim.chat_requests[0]["messages"] == messages and sim.chat_requests[0]["max_tokens"] == 50


def test_streamed_chat_joins_to_the_whole_reply_and_ends_with_usage(configure: Configure, client: OpenAI) -> None:
    configure()
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 5
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_scripted_replies_come_in_order_then_the_echo_and_faults_hit_chat_too(
    configure: Configure, client: OpenAI
) -> None:
    configure(chat_script=("See [99].", "Nothing cited."), faults=("ok", "ok", "503"))

    def ask() -> str | None:
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
        return reply.choices[0].message.content

    assert [ask(), ask()] == ["See [99].", "Nothing cited."]
    with pytest.raises(openai.InternalServerError):
        ask()
    assert (ask() or "").startswith("According to the passages")


def test_a_prompt_over_the_context_window_is_context_length_exceeded(configure: Configure, client: OpenAI) -> None:
    configure(context_window=60)
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=40)
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 60 tokens. However, you requested" in caught.value.message
    assert client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=10).choices


def test_moderation_flags_the_configured_words(configure: Configure, client: OpenAI, http: httpx.Client) -> None:
    configure()
    results = client.moderations.create(input=["How do I kill a process?", "Bake a cake"]).results
    assert [r.flagged for r in results] == [True, False] and results[0].categories.violence
    configure(flagged_words=("cake",))
    body = http.post("/v1/moderations", json={"input": "Bake a CAKE"}).json()
    assert body["results"][0]["flagged"] and body["model"] == "omni-moderation-latest" and body["id"]
