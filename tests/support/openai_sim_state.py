"""The OpenAI simulator without HTTP: config, state, rate-limit window, faults, vectors, request rules.

`search/openai_sim.py` serves these over the OpenAI protocol; tests read `SimulatorState`
to see what the server saw (requests, inputs embedded, faults, rejections). A broken rule
raises `ApiError`, which carries OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.tokenizer import tiktoken_encoding

FAULT_KINDS = frozenset(
    {
        "ok",
        "500",
        "502",
        "503",
        "429",
        "quota",
        "400",
        "drop",
        "slow",
        "malformed",
        "wrong_count",
        "wrong_dimension",
        "shuffled",
        "no_base64",
    }
)
BATCH_OUTCOMES = frozenset({"completed", "failed", "expired"})
NATIVE_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8191
_INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_WORD = re.compile(r"\w+")
_SLOTS_PER_WORD = 3  # each word lands on a few coordinates, so two words rarely cancel out entirely


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated OpenAI server behaves; every field has a realistic or test-friendly default."""

    api_key: str | None = None
    dimensions: int = 64
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    window: float = 60.0
    latency: float = 0.0
    faults: Sequence[str] = ()
    fault_rate: float = 0.0
    fault_kinds: Sequence[str] = ("500", "429", "drop")
    seed: int = 0
    retry_after: float = 0.2
    slow_seconds: float = 5.0
    supports_base64: bool = True
    chat_script: Sequence[str] | None = None
    context_window: int | None = None
    flagged_words: Sequence[str] = ("kill", "bomb")
    # Batches (`openai_sim_batches.py`): a batch moves validating -> in_progress -> finalizing -> its end once
    # it has been retrieved `batch_polls` times and `batch_seconds` have passed in each status; the n-th batch
    # created ends as `batch_outcomes[n]` (completed | failed | expired; completed past the list); the request
    # lines numbered in `batch_failed_lines` (from 0) go to the error file, those in `batch_garbled_lines` are
    # written to the output file broken.
    batch_polls: int = 1
    batch_seconds: float = 0.0
    batch_outcomes: Sequence[str] = ()
    batch_failed_lines: Sequence[int] = ()
    batch_garbled_lines: Sequence[int] = ()

    def __post_init__(self) -> None:
        unknown = (set(self.faults) | set(self.fault_kinds)) - FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {sorted(FAULT_KINDS)}")
        if set(self.batch_outcomes) - BATCH_OUTCOMES:
            raise ValueError(f"unknown batch outcomes {self.batch_outcomes}; choose from {sorted(BATCH_OUTCOMES)}")


def simulated_embedding(text: str, dimensions: int) -> npt.NDArray[np.float32]:
    """The simulator's vector of `text`: a hashed, signed bag of lower-cased words, L2-normalised."""
    vector = np.zeros(dimensions, dtype=np.float64)
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8 * _SLOTS_PER_WORD).digest()
        for slot in range(_SLOTS_PER_WORD):
            value = int.from_bytes(digest[8 * slot : 8 * slot + 8], "little")
            vector[(value >> 1) % dimensions] += 1.0 if value & 1 else -1.0
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:  # no words (or words that cancelled): still a valid unit vector, the same every time
        return np.full(dimensions, 1 / math.sqrt(dimensions), dtype=np.float32)
    return (vector / norm).astype(np.float32)


def estimate_tokens(text: str) -> int:
    """Tokens as OpenAI bills them for its embedding and chat models: cl100k_base, at least one."""
    return max(1, len(tiktoken_encoding("cl100k_base").encode_ordinary(text)))


def format_duration(seconds: float) -> str:
    """A duration as OpenAI's rate-limit headers write it: `20ms`, `1s`, `1m30.5s`, `6m0s`, `1h2m3s`."""
    millis = max(0, math.ceil(seconds * 1000 - 1e-6))  # rounded up: waiting this long is always enough
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class RateDecision:
    """Why a request must wait: which limit binds (`requests` or `tokens`), its figures, and for how long."""

    kind: str
    limit: int
    used: int
    requested: int
    wait: float


class RateWindow:
    """Requests accepted in the last `window` seconds, with their tokens: a sliding-window RPM/TPM limiter."""

    def __init__(self, rpm: int | None, tpm: int | None, window: float) -> None:
        self.rpm, self.tpm, self.window = rpm, tpm, window
        self.entries: deque[tuple[float, int]] = deque()

    def check(self, tokens: int, now: float) -> RateDecision | None:
        """None if a request of `tokens` fits now, else the binding limit (requests first, like OpenAI)."""
        self._expire(now)
        if self.rpm is not None and len(self.entries) + 1 > self.rpm:
            wait = self._wait_until_freed(len(self.entries) + 1 - self.rpm, lambda _: 1, now)
            return RateDecision("requests", self.rpm, len(self.entries), 1, wait)
        used = self.tokens_used()
        if self.tpm is not None and used + tokens > self.tpm:
            wait = self._wait_until_freed(used + tokens - self.tpm, lambda entry: entry[1], now)
            return RateDecision("tokens", self.tpm, used, tokens, wait)
        return None

    def record(self, tokens: int, now: float) -> None:
        """Count an accepted request against both limits."""
        self.entries.append((now, tokens))

    def tokens_used(self) -> int:
        """Tokens of the requests still inside the window."""
        return sum(tokens for _, tokens in self.entries)

    def headers(self, now: float) -> dict[str, str]:
        """The `x-ratelimit-*` headers for each configured limit."""
        self._expire(now)
        # "reset" is, as OpenAI documents it, the time until the limit is back to its initial state
        reset = self.entries[-1][0] + self.window - now if self.entries else 0.0
        headers: dict[str, str] = {}
        if self.rpm is not None:
            headers |= _limit_headers("requests", self.rpm, self.rpm - len(self.entries), reset)
        if self.tpm is not None:
            headers |= _limit_headers("tokens", self.tpm, self.tpm - self.tokens_used(), reset)
        return headers

    def _expire(self, now: float) -> None:
        while self.entries and self.entries[0][0] + self.window <= now:
            self.entries.popleft()

    def _wait_until_freed(self, needed: int, size: Callable[[tuple[float, int]], int], now: float) -> float:
        freed = 0
        for entry in self.entries:
            freed += size(entry)
            if freed >= needed:
                return entry[0] + self.window - now
        return self.window


def _limit_headers(kind: str, limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(limit),
        f"x-ratelimit-remaining-{kind}": str(max(0, remaining)),
        f"x-ratelimit-reset-{kind}": format_duration(reset),
    }


class FaultPlan:
    """Which fault the next request gets: the fixed schedule first, then random draws at `rate`."""

    def __init__(self, schedule: Sequence[str], rate: float, kinds: Sequence[str], seed: int) -> None:
        self.pending = deque(schedule)
        self.rate, self.kinds = rate, tuple(kinds)
        self.random = random.Random(seed)

    def next(self) -> str:
        """The next fault kind, or "ok" for normal behaviour."""
        if self.pending:
            return self.pending.popleft()
        if self.rate and self.kinds and self.random.random() < self.rate:
            return self.random.choice(self.kinds)
        return "ok"


@dataclass
class SimulatorState:
    """What the simulator has seen and decided so far; tests inspect it as `app.state.sim`."""

    config: SimulatorConfig
    clock: Callable[[], float] = time.monotonic
    requests: int = 0
    inputs_embedded: Counter[str] = field(default_factory=Counter)
    rejected_429: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    requests_log: list[dict[str, Any]] = field(default_factory=list)
    chat_requests: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)  # file id -> SimFile (`openai_sim_batches.py`)
    batches: dict[str, Any] = field(default_factory=dict)  # batch id -> SimBatch
    batches_created: int = 0
    inputs_batched: Counter[str] = field(default_factory=Counter)  # texts embedded by batches
    rate_window: RateWindow = field(init=False)
    fault_plan: FaultPlan = field(init=False)
    chat_replies: deque[str] = field(init=False)

    def __post_init__(self) -> None:
        config = self.config
        self.rate_window = RateWindow(config.rpm, config.tpm, config.window)
        self.fault_plan = FaultPlan(config.faults, config.fault_rate, config.fault_kinds, config.seed)
        self.chat_replies = deque(config.chat_script or ())

    def admit(self, model: str | None, tokens: int) -> None:
        """Count a request against RPM/TPM, or refuse it with OpenAI's 429 (400 if it can never fit)."""
        window, now = self.rate_window, self.clock()
        if window.tpm is not None and tokens > window.tpm:
            raise ApiError(
                400,
                f"Request too large for {model} on tokens per min (TPM): Limit {window.tpm}, "
                f"Requested {tokens}. The input or output tokens must be reduced in order to run "
                "successfully.",
                kind="tokens",
                code="rate_limit_exceeded",
            )
        decision = window.check(tokens, now)
        if decision is not None:
            raise rate_limited(model, decision)
        window.record(tokens, now)

    def next_fault(self) -> str:
        """Draw the fault for one request and count it if it is one."""
        kind = self.fault_plan.next()
        if kind != "ok":
            self.faults_injected[kind] += 1
        return kind


class ApiError(Exception):
    """A refusal in OpenAI's shape; the server answers `status` with `body` and `headers`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}


def rate_limited(model: str | None, decision: RateDecision) -> ApiError:
    """OpenAI's 429 for a limit that binds, with `retry-after` (whole seconds) and `retry-after-ms`."""
    unit = "requests per min (RPM)" if decision.kind == "requests" else "tokens per min (TPM)"
    message = (
        f"Rate limit reached for {model} in organization org-simulator on {unit}: Limit {decision.limit}, "
        f"Used {decision.used}, Requested {decision.requested}. Please try again in "
        f"{format_duration(decision.wait)}. Visit https://platform.openai.com/account/rate-limits."
    )
    headers = {
        "retry-after": str(max(1, math.ceil(decision.wait))),
        "retry-after-ms": str(max(1, math.ceil(decision.wait * 1000))),
    }
    return ApiError(429, message, kind=decision.kind, code="rate_limit_exceeded", headers=headers)


def check_model(body: dict[str, Any], config: SimulatorConfig, default: str | None = None) -> str:
    """The requested model: present, and on the allow-list if there is one (else 404 `model_not_found`)."""
    model = body.get("model") or default
    if not isinstance(model, str):
        raise ApiError(400, "you must provide a model parameter", param="model")
    if config.models is not None and model not in config.models:
        raise ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    return model


def input_texts(value: object) -> list[str]:
    """`input` as a list of non-empty strings within OpenAI's limits (token arrays are not simulated)."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise ApiError(400, _INVALID_INPUT, param="input")
    if len(texts) > MAX_INPUTS:
        raise ApiError(400, f"Too many inputs ({len(texts)}): at most {MAX_INPUTS} per request.", param="input")
    for text in texts:
        if (tokens := estimate_tokens(text)) > MAX_INPUT_TOKENS:
            raise ApiError(
                400,
                f"This model's maximum context length is {MAX_INPUT_TOKENS} tokens, however you "
                f"requested {tokens} tokens ({tokens} in your prompt; 0 for the completion). "
                "Please reduce your prompt; or completion length.",
            )
    return texts


def encoding_format(body: dict[str, Any], fault: str, config: SimulatorConfig) -> str:
    """`float` or `base64`; base64 is refused when the server "does not support" it."""
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise ApiError(400, f"'{fmt}' is not one of ['float', 'base64'] - 'encoding_format'", param="encoding_format")
    if fmt == "base64" and (fault == "no_base64" or not config.supports_base64):
        raise ApiError(400, "encoding_format base64 is not supported", param="encoding_format")
    return str(fmt)


def embedding_size(model: str, requested: object, config: SimulatorConfig) -> int:
    """The model's native size, or `dimensions` where the model supports it (the text-embedding-3 family)."""
    native = NATIVE_DIMENSIONS.get(model, config.dimensions)
    if requested is None:
        return native
    if model == "text-embedding-ada-002":
        raise ApiError(400, "This model does not support specifying dimensions.", param="dimensions")
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise ApiError(400, f"Invalid 'dimensions': {requested!r}; expected a positive integer.", param="dimensions")
    if model in NATIVE_DIMENSIONS and requested > native:
        raise ApiError(400, f"Invalid 'dimensions': {requested}; {model} has at most {native}.", param="dimensions")
    return requested


def check_context(prompt: int, completion_room: int, window: int | None) -> None:
    """OpenAI's 400 `context_length_exceeded` when messages plus `max_tokens` exceed the window."""
    if window is None or prompt + completion_room <= window:
        return
    if completion_room:
        detail = (
            f"However, you requested {prompt + completion_room} tokens ({prompt} in the messages, "
            f"{completion_room} in the completion). Please reduce the length of the messages or completion."
        )
    else:
        detail = f"However, your messages resulted in {prompt} tokens. Please reduce the length of the messages."
    raise ApiError(
        400,
        f"This model's maximum context length is {window} tokens. {detail}",
        code="context_length_exceeded",
        param="messages",
    )


def echo_reply(question: str) -> str:
    """The default chat reply: each numbered passage of `question`, named by its first words, cited as [n]."""
    cited: dict[str, str] = {}
    for number, passage in re.findall(r"\[(\d+)\]\s*([^\[\n]*)", question):
        cited.setdefault(number, " ".join(passage.split()[:8]).rstrip(".,;:"))
    if not cited:
        return "I was given no numbered passages, so I cannot answer from them."
    return "According to the passages, " + "; ".join(f"{words} [{n}]".lstrip() for n, words in cited.items()) + "."


def moderation_result(text: str, flagged_words: Sequence[str]) -> dict[str, Any]:
    """One moderation result: a text with a flagged word counts as violence, the only category judged."""
    flagged = bool({word.lower() for word in flagged_words} & set(_WORD.findall(text.lower())))
    categories = {name: flagged and name == "violence" for name in _MODERATION_CATEGORIES}
    scores = {name: 0.97 if hit else 0.0001 for name, hit in categories.items()}
    applied = {name: ["text"] for name in _MODERATION_CATEGORIES}
    return {
        "flagged": flagged,
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }
