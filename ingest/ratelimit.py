"""Pacing requests under requests-per-minute and tokens-per-minute limits.

The limiter keeps a log of what it sent in the last period (a minute for OpenAI's
limits) and lets a request go only while the log, with it, stays within 98% of each
limit: the rule a sliding-window server enforces, and stricter than a token bucket
that refills continuously, so it keeps clear of 429s with either kind. The server's
`x-ratelimit-*` headers correct the limits and what is left; a 429's `retry-after`
pauses every sender.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
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


class _Window:
    """What was sent in the last `period` seconds against one limit."""

    def __init__(self, limit: float | None, period: float) -> None:
        self.limit, self.period = limit, period
        self.entries: deque[tuple[float, float]] = deque()  # (time it stops counting, amount)
        self.used = 0.0

    def _expire(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now:
            self.used -= self.entries.popleft()[1]

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` more fits (0 when unlimited; an amount over the limit waits for an empty log)."""
        if not self.limit:
            return 0.0
        self._expire(now)
        cap = self.limit * _SAFETY
        excess = self.used + min(amount, cap) - cap
        for ends, size in self.entries:
            if excess <= 1e-9:
                break
            excess -= size
            if excess <= 1e-9:
                return ends - now
        return 0.0 if excess <= 1e-9 else self.period

    def record(self, amount: float, now: float, *, lasts: float | None = None) -> None:
        if self.limit and amount > 0:
            # A request reaches the server a little after we count it here: keep it in our log a
            # little longer than the server keeps it in its own (1% of the period, 0.1 s at least).
            ends = now + (self.period + max(0.1, 0.01 * self.period) if lasts is None else lasts)
            # Keep the log in expiry order (a header may add an entry that ends before others).
            position = len(self.entries)
            while position and self.entries[position - 1][0] > ends:
                position -= 1
            self.entries.insert(position, (ends, amount))
            self.used += amount

    def remaining(self, now: float) -> float:
        self._expire(now)
        return (self.limit or 0.0) * _SAFETY - self.used


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
        self._requests = _Window(rpm, period)
        self._tokens = _Window(tpm, period)
        self._paused_until = 0.0
        self._lock = threading.Lock()

    @property
    def limits(self) -> tuple[float | None, float | None]:
        """The (RPM, TPM) limits in force."""
        return self._requests.limit, self._tokens.limit

    def acquire(self, tokens: int) -> None:
        """Wait until one request of `tokens` tokens may be sent, and count it as sent."""
        while True:
            with self._lock:
                now = self._clock()
                delay = max(
                    self._paused_until - now, self._requests.wait_for(1, now), self._tokens.wait_for(tokens, now)
                )
                if delay <= 1e-6:  # rounding must never leave a sender waiting for nothing
                    self._requests.record(1, now)
                    self._tokens.record(min(tokens, (self._tokens.limit or tokens) * _SAFETY), now)
                    return
            self._sleep(min(delay, 5.0))

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt the limits and the remaining capacity the server reports."""
        with self._lock:
            now = self._clock()
            for window, kind in ((self._requests, "requests"), (self._tokens, "tokens")):
                limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
                if limit:
                    window.limit = limit
                remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
                if remaining is None or not window.limit:
                    continue
                # Usage the server counts and we do not (other clients, requests before we started):
                # hold it until the server says its count resets.
                unseen = window.remaining(now) - remaining * _SAFETY
                reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}") or "")
                window.record(unseen, now, lasts=reset)

    def pause(self, seconds: float) -> None:
        """Hold every sender for `seconds` (a 429's retry-after)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
