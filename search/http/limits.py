"""Request limits: a per-key rate limit (429), a body size cap (413), and the checks routes make.

RateLimit(per_minute).take(key)   a token bucket per key; raises RateLimited with retry-after
MaxBody(app, max_bytes)           ASGI middleware: 413 for bodies over the cap, declared or streamed
Limits(...).check_files           the per-request file count a route checks itself
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.errors import RateLimited, TooLarge

from .error_shapes import error_for


@dataclass(frozen=True)
class Limits:
    """The per-request upload limits, from `Settings` (query length and k are the service's `QueryLimits`)."""

    max_upload_bytes: int
    max_files: int

    def check_files(self, count: int) -> None:
        """413 when one request carries more files than allowed."""
        if count > self.max_files:
            raise TooLarge(
                f"{count} files in one request; the limit is {self.max_files}: send them in several requests"
            )


class RateLimit:
    """A token bucket per key: `per_minute` requests a minute, in bursts of up to a minute's worth; 0 turns it off."""

    def __init__(
        self, per_minute: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000
    ) -> None:
        self.per_minute = per_minute
        self._capacity = max(1.0, per_minute)  # a rate under one a minute still lets one request through
        self._per_second = per_minute / 60
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one request of `key`'s budget, or raise RateLimited saying when one is available."""
        if self.per_minute <= 0:
            return
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                raise self._limited((1 - tokens) / self._per_second)
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > self._max_keys:
                self._forget_full(now)

    def _tokens(self, key: str, now: float) -> float:
        tokens, since = self._buckets.get(key, (self._capacity, now))
        return min(self._capacity, tokens + (now - since) * self._per_second)

    def _forget_full(self, now: float) -> None:
        """A full bucket is the same as no bucket, so idle keys cost no memory."""
        for key in [k for k in self._buckets if self._tokens(k, now) >= self._capacity]:
            del self._buckets[key]

    def _limited(self, wait: float) -> RateLimited:
        seconds = max(1, math.ceil(wait))
        rate = f"{self.per_minute:g} requests a minute"
        return RateLimited(
            f"too many requests for this key ({rate}); retry in {seconds} s", headers={"retry-after": str(seconds)}
        )


class _BodyTooLarge(Exception):
    """Raised inside the app when the streamed body passes the cap; MaxBody answers with 413."""


class MaxBody:
    """ASGI middleware: a 413 for request bodies over `max_bytes` (Content-Length or chunked); 0 turns it off."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(f"the request body is {declared:,} bytes", scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Counts the body as the app reads it; past the cap the app's own answer is dropped for a 413."""
        received = 0
        over = started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not read (often a 400); ours follows
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # Frameworks may wrap our signal (a 400, an exception group): the flag is what counts.
            if not over or started:
                raise
        if over and not started:
            await self._reject(f"the request body is over {self.max_bytes:,} bytes", scope, receive, send)

    async def _reject(self, what: str, scope: Scope, receive: Receive, send: Send) -> None:
        error = TooLarge(f"{what}; the limit is {self.max_bytes:,} bytes: send a smaller body or fewer files")
        response = error_for(scope.get("path", ""), error.status_code, error.kind, str(error), error.headers)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
