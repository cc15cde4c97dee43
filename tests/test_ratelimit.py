"""The rate limiter and duration parsing, on a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from ingest import RateLimiter, retry_after
from ingest.ratelimit import parse_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def limiter(rpm: float | None, tpm: float | None, clock: FakeClock) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("20ms", 0.02), ("6m0s", 360.0), ("1m30.5s", 90.5), ("1h2m3s", 3723.0), ("2.5", 2.5), ("", None), ("soon", None)],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_retry_after_prefers_milliseconds() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({}) is None


def test_requests_are_paced_evenly_under_the_rpm() -> None:
    clock = FakeClock()
    rate = limiter(60, None, clock)
    start = clock.now
    for _ in range(61):
        rate.acquire(0)
    # One second's worth may go at once; the other 60 requests take a minute at 98% of the limit.
    assert 60 / 0.98 - 2 <= clock.now - start <= 60 / 0.98 + 1


def test_tokens_bind_when_requests_are_large() -> None:
    clock = FakeClock()
    rate = limiter(10_000, 60_000, clock)
    start = clock.now
    for _ in range(10):
        rate.acquire(12_000)  # 120,000 tokens: two minutes at 60,000 per minute
    per_second = 60_000 * 0.98 / 60
    # Each request waits until its tokens are there; the bucket starts with one second's worth.
    assert clock.now - start == pytest.approx((120_000 - per_second) / per_second, abs=0.5)


def test_no_window_of_a_minute_ever_exceeds_the_limit() -> None:
    clock = FakeClock()
    rate = limiter(None, 150_000, clock)
    sent: list[tuple[float, int]] = []
    for size in [5_000, 30_000, 1_000, 60_000, 2_500] * 20:
        rate.acquire(size)
        sent.append((clock.now, size))
    for t, _ in sent:
        assert sum(s for u, s in sent if t - 60 < u <= t) <= 150_000 + 60_000  # one request may straddle


def test_a_request_larger_than_the_limit_still_goes_after_a_full_bucket() -> None:
    clock = FakeClock()
    rate = limiter(None, 1_000, clock)
    rate.acquire(5_000)
    assert clock.now - 1000.0 <= 61


def test_headers_lower_the_remaining_capacity_and_set_limits() -> None:
    clock = FakeClock()
    rate = limiter(None, None, clock)
    rate.observe({"x-ratelimit-limit-requests": "120", "x-ratelimit-remaining-requests": "0", "x-ratelimit-limit-tokens": "1000000"})
    assert rate.limits == (120.0, 1_000_000.0)
    start = clock.now
    rate.acquire(10)
    assert clock.now - start == pytest.approx(60 / (120 * 0.98), rel=0.01), "nothing left: wait for one request's refill"


def test_pause_holds_every_sender() -> None:
    clock = FakeClock()
    rate = limiter(6000, None, clock)
    rate.pause(3.0)
    start = clock.now
    rate.acquire(0)
    assert clock.now - start >= 3.0


def test_unlimited_never_waits() -> None:
    clock = FakeClock()
    rate = limiter(None, None, clock)
    for _ in range(1000):
        rate.acquire(10**6)
    assert clock.slept == 0
