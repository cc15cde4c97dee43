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
    [
        ("1s", 1.0),
        ("20ms", 0.02),
        ("6m0s", 360.0),
        ("1m30.5s", 90.5),
        ("1h2m3s", 3723.0),
        ("2.5", 2.5),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_retry_after_prefers_milliseconds() -> None:
    assert retry_after({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({}) is None


def test_requests_stay_under_98_percent_of_the_rpm_in_any_minute() -> None:
    clock = FakeClock()
    rate = limiter(60, None, clock)
    start = clock.now
    times = []
    for _ in range(120):
        rate.acquire(0)
        times.append(clock.now)
    # 58 requests (98% of 60) go at once; the next wait for the first to leave our log (a minute and 0.6 s).
    assert times[57] == start and times[58] == pytest.approx(start + 60.6)
    assert max(sum(1 for u in times if t - 60 < u <= t) for t in times) <= 58


def test_tokens_bind_when_requests_are_large() -> None:
    clock = FakeClock()
    rate = limiter(10_000, 60_000, clock)
    start = clock.now
    for _ in range(10):
        rate.acquire(12_000)  # 120,000 tokens: two minutes at 60,000 per minute
    # 4 requests (48,000 tokens) fit 98% of a minute's 60,000; the next 4 when those expire; then 2 more.
    assert clock.now - start == pytest.approx(2 * 60.6, abs=0.01)


def test_no_window_of_a_minute_ever_exceeds_the_limit() -> None:
    clock = FakeClock()
    rate = limiter(None, 150_000, clock)
    sent: list[tuple[float, int]] = []
    for size in [5_000, 30_000, 1_000, 60_000, 2_500] * 20:
        rate.acquire(size)
        sent.append((clock.now, size))
    for t, _ in sent:
        assert sum(s for u, s in sent if t - 60 < u <= t) <= 150_000 * 0.98


def test_a_request_larger_than_the_limit_still_goes_after_a_full_bucket() -> None:
    clock = FakeClock()
    rate = limiter(None, 1_000, clock)
    rate.acquire(5_000)
    assert clock.now - 1000.0 <= 61


def test_headers_lower_the_remaining_capacity_and_set_limits() -> None:
    clock = FakeClock()
    rate = limiter(None, None, clock)
    rate.observe(
        {
            "x-ratelimit-limit-requests": "120",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1.5s",
            "x-ratelimit-limit-tokens": "1000000",
        }
    )
    assert rate.limits == (120.0, 1_000_000.0)
    start = clock.now
    rate.acquire(10)
    assert clock.now - start == pytest.approx(1.5, abs=0.01), "nothing left: wait until the server's count resets"


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
