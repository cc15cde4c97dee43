"""Pacing requests under requests-per-minute and tokens-per-minute limits.

Two token buckets (requests, tokens) refill continuously at 98% of the limit. They
start with one second's worth, not a minute's: a client that bursts a whole
minute at once is then locked out by a sliding-window server for the rest of it.
The server's `x-ratelimit-*` headers correct both the limits and what is left, and
a 429's `retry-after` pauses every sender, so the pace adapts to the real account.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping

_SAFETY = 0.98
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$")


def parse_duration(text: str) -> float | None:
    """Seconds in OpenAI's reset format ("1s", "6m0s", "20ms", "1h2m3.5s"); None if unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


class _Bucket:
    def __init__(self, per_minute: float | None, now: float, period: float) -> None:
        self.per_minute = per_minute  # per `period` seconds: 60 for OpenAI's limits
        self.period = period
        self.level = self.rate * 1.0 if per_minute else 0.0
        self.updated = now

    @property
    def rate(self) -> float:
        """Refill per second."""
        return (self.per_minute or 0.0) * _SAFETY / self.period

    def refill(self, now: float) -> None:
        if self.per_minute:
            elapsed = max(0.0, now - self.updated)  # `updated` is in the future during a pause
            self.level = min(self.per_minute * _SAFETY, self.level + elapsed * self.rate)
        self.updated = max(self.updated, now)

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 when unlimited)."""
        if not self.per_minute:
            return 0.0
        # A request bigger than the bucket can ever hold waits for a full bucket instead.
        needed = min(amount, self.per_minute * _SAFETY) - self.level
        return max(0.0, needed / self.rate)


class RateLimiter:
    """Blocks each sender until its request fits under the RPM and TPM limits."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        now = clock()
        self._requests = _Bucket(rpm, now, period)
        self._tokens = _Bucket(tpm, now, period)
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.waited = 0.0

    @property
    def limits(self) -> tuple[float | None, float | None]:
        """The (RPM, TPM) limits in force."""
        return self._requests.per_minute, self._tokens.per_minute

    def acquire(self, tokens: int) -> None:
        """Wait until one request of `tokens` tokens may be sent, and count it as sent."""
        while True:
            with self._lock:
                now = self._clock()
                self._requests.refill(now)
                self._tokens.refill(now)
                delay = max(self._paused_until - now, self._requests.wait_for(1), self._tokens.wait_for(tokens))
                if delay <= 1e-6:  # rounding must never leave a sender waiting for nothing
                    self._requests.level -= 1
                    self._tokens.level -= tokens
                    return
                self.waited += delay
            self._sleep(min(delay, 5.0))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt the limits and remaining capacity the server reports."""
        with self._lock:
            now = self._clock()
            for bucket, kind in ((self._requests, "requests"), (self._tokens, "tokens")):
                limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
                if limit:
                    bucket.refill(now)
                    bucket.per_minute = limit
                remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
                if remaining is not None and bucket.per_minute:
                    bucket.refill(now)
                    # Requests still in flight are not in the server's count yet: only lower.
                    bucket.level = min(bucket.level, remaining * _SAFETY)

    def pause(self, seconds: float) -> None:
        """Hold every sender for `seconds` (a 429's retry-after) and empty the buckets."""
        with self._lock:
            now = self._clock()
            self._paused_until = max(self._paused_until, now + seconds)
            self._requests.level = min(self._requests.level, 0.0)
            self._tokens.level = min(self._tokens.level, 0.0)
            for bucket in (self._requests, self._tokens):
                bucket.updated = max(bucket.updated, now + seconds)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
