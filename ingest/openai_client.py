"""A small client for OpenAI-compatible HTTP APIs: pacing, retries, clear errors.

Shared by the embeddings client and the chat answerer. 429s, 5xx, timeouts, dropped
connections and unreadable replies are retried with exponential backoff and jitter,
honouring `retry-after-ms` / `retry-after`; a 429 for `insufficient_quota` and other
4xx fail at once, with the server's own message. An address where nothing answers
(connection refused, unknown host, no reply to connect) is retried for a second or two
only: a server that moved will not come back, and the error says how to point elsewhere.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import httpx

from .errors import QuotaExceeded, UpstreamRejected, UpstreamUnavailable, UpstreamUnreachable
from .ratelimit import RateLimiter

T = TypeVar("T")
_RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
CONNECT_GRACE = 1.5  # seconds a refused connection is retried: a restart, not a server that moved
CONNECT_TIMEOUT = 10.0  # seconds to open a connection (a host that is gone never refuses)


class MalformedResponse(Exception):
    """A reply that parsed but is not what was asked for (retried like a 5xx)."""


@dataclass
class ClientStats:
    """What the client did: requests, retries, rate limiting, tokens billed."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    failures: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, float | int]:
        minutes = max(time.monotonic() - self.started, 1e-9) / 60
        return {
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "failures": self.failures,
            "tokens": self.tokens,
            "tokens_per_minute": round(self.tokens / minutes, 1),
        }


class OpenAIClient:
    """POSTs JSON to an OpenAI-compatible server, paced by a `RateLimiter`, with retries."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        limiter: RateLimiter | None = None,
        http: httpx.Client | None = None,
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        unreachable_hint: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or RateLimiter()
        self.unreachable_hint = unreachable_hint  # how to point elsewhere, for the error when nothing answers
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=64)
        timeouts = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
        self._http = http or httpx.Client(timeout=timeouts, headers=headers, limits=limits)
        if http is not None:
            self._http.headers.update(headers)
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.stats = ClientStats()

    def post(self, path: str, body: dict[str, Any], *, tokens: int = 0, parse: Callable[[dict[str, Any]], T]) -> T:
        """POST `body` to `path`; `parse` turns the JSON reply into a result or raises `MalformedResponse`."""
        url = f"{self.base_url}{path}"
        result: T = self._retrying(url, tokens, lambda: self._http.post(url, json=body), parse)
        return result

    def get(self, path: str, *, params: dict[str, Any] | None = None, parse: Callable[[dict[str, Any]], T]) -> T:
        """GET `path` (with query `params`); `parse` as for `post`."""
        url = f"{self.base_url}{path}"
        result: T = self._retrying(url, 0, lambda: self._http.get(url, params=params), parse)
        return result

    def upload(
        self, path: str, file: tuple[str, IO[bytes], str], data: dict[str, str], *, parse: Callable[[dict[str, Any]], T]
    ) -> T:
        """POST a multipart form: one `file` (name, stream, content type) and text fields; the stream is rewound
        before each attempt."""
        url = f"{self.base_url}{path}"

        def send() -> httpx.Response:
            file[1].seek(0)
            return self._http.post(url, files={"file": file}, data=data)

        result: T = self._retrying(url, 0, send, parse)
        return result

    def download_to(self, path: str, out: IO[bytes]) -> int:
        """GET `path` and write its body to `out` as it arrives, never all in memory; the bytes written.

        A body that breaks off is fetched again from the start (`out` is rewound and truncated).
        """
        url = f"{self.base_url}{path}"

        def send() -> httpx.Response:
            with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()  # the error body, for the message
                    return response
                out.seek(0)
                out.truncate()
                for part in response.iter_bytes(1 << 20):
                    out.write(part)
            return response

        self._retrying(url, 0, send, None)
        out.flush()
        return out.tell()

    def delete(self, path: str) -> None:
        """DELETE `path` (retried like the rest; a 4xx such as 404 raises `UpstreamRejected`)."""
        url = f"{self.base_url}{path}"
        self._retrying(url, 0, lambda: self._http.delete(url), _no_parse)

    def stream(self, path: str, body: dict[str, Any], *, tokens: int = 0) -> Iterator[dict[str, Any]]:
        """POST and yield the server-sent events of the reply (retried until the first byte only)."""
        url = f"{self.base_url}{path}"
        request = self._http.build_request("POST", url, json=body)
        response: httpx.Response = self._retrying(url, tokens, lambda: self._http.send(request, stream=True), None)
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    yield json.loads(data)
                except json.JSONDecodeError as exc:
                    raise UpstreamUnavailable(f"{url} sent an unreadable event: {data[:100]!r}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"the reply from {url} broke off: {type(exc).__name__}: {exc}") from exc
        finally:
            response.close()

    def _retrying(
        self, url: str, tokens: int, send: Callable[[], httpx.Response], parse: Callable[[dict[str, Any]], T] | None
    ) -> Any:
        """Send until a usable reply: the parsed result, or the open response when `parse` is None."""
        problem = "no attempt made"
        refused_since: float | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
            self.limiter.acquire(tokens)
            self.stats.add(requests=1)
            try:
                response = send()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                refused_since = refused_since or time.monotonic()
                if time.monotonic() - refused_since >= CONNECT_GRACE or attempt == self.max_retries:
                    self.stats.add(failures=1)
                    raise self._unreachable(exc) from exc
                problem = f"connection failed ({type(exc).__name__}: {exc})"
            except httpx.TimeoutException as exc:
                problem = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                self.limiter.observe(response.headers)
                if parse is None and response.status_code == 200:
                    return response
                if parse is None:
                    response.read()
                    response.close()
                outcome = self._outcome(response, parse or _no_parse)
                if not isinstance(outcome, _Retry):
                    return outcome
                problem = outcome.problem
                if outcome.wait is not None:
                    self.limiter.pause(outcome.wait)
                    continue
            time.sleep(self._delay(attempt) if refused_since is None else min(self._delay(attempt), CONNECT_GRACE / 3))
        self.stats.add(failures=1)
        raise UpstreamUnavailable(f"{url} failed {self.max_retries + 1} times; last: {problem}")

    def _unreachable(self, exc: httpx.TransportError) -> UpstreamUnreachable:
        reason = "no reply to connect" if isinstance(exc, httpx.ConnectTimeout) else str(exc) or type(exc).__name__
        hint = f"; {self.unreachable_hint}" if self.unreachable_hint else ""
        return UpstreamUnreachable(f"nothing answers at {self.base_url} ({reason}){hint}")

    def _outcome(self, response: httpx.Response, parse: Callable[[dict[str, Any]], T]) -> T | _Retry:
        status = response.status_code
        if status == 200:
            try:
                return parse(response.json())
            except (
                json.JSONDecodeError,
                UnicodeDecodeError,
                MalformedResponse,
                KeyError,
                TypeError,
                ValueError,
            ) as exc:
                return _Retry(f"unusable reply ({type(exc).__name__}: {str(exc)[:200]})")
        message, code = _error_of(response)
        if status == 429:
            if code == "insufficient_quota":
                raise QuotaExceeded(
                    f"{self.base_url}: {message} (HTTP 429 insufficient_quota)", status=status, code=code
                )
            self.stats.add(rate_limited=1)
            return _Retry(f"HTTP 429: {message}", wait=retry_after(response.headers) or self._delay(0))
        if status in _RETRYABLE_STATUS:
            return _Retry(f"HTTP {status}: {message}")
        hint = " (check OPENAI_API_KEY)" if status in (401, 403) else ""
        raise UpstreamRejected(
            f"{self.base_url} refused the request: HTTP {status}: {message}{hint}", status=status, code=code
        )

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter between half and the whole step."""
        step: float = min(self.max_backoff, self.backoff * 2.0**attempt)
        return step * random.uniform(0.5, 1.0)

    def close(self) -> None:
        self._http.close()


def _no_parse(reply: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class _Retry:
    problem: str
    wait: float | None = None


def retry_after(headers: httpx.Headers | dict[str, str]) -> float | None:
    """The server's requested wait in seconds: `retry-after-ms`, else `retry-after`."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _error_of(response: httpx.Response) -> tuple[str, str | None]:
    """The message and code of an OpenAI-style error body (or the raw text)."""
    try:
        error = response.json().get("error") or {}
        if isinstance(error, dict):
            return str(error.get("message") or response.reason_phrase), error.get("code") or error.get("type")
        return str(error), None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return (response.text[:200] or response.reason_phrase), None
