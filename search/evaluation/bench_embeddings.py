"""`semsearch bench-embeddings`: how close the embeddings client runs to a server's rate limits.

It starts the OpenAI simulator on 127.0.0.1 with RPM/TPM limits and a latency, then
embeds for a fixed time twice: with our client (paced, concurrent, adapting to the
x-ratelimit headers) and with naive sequential requests (no pacing; on a 429 it waits
the retry-after and tries again, as the official client does). It reports the tokens
per minute the server accepted, as a fraction of the limit, and the 429s it sent.
Each run ends when its time is up, even inside a wait for the rate limit (which can
last most of a minute), so `--seconds 5` takes about ten seconds.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import OpenAIClient, RateLimiter, RemoteOptions, make_embedder
from search.errors import ConfigError
from search.http.server import ServerThread

_WINDOW = 60.0  # seconds the simulator's RPM/TPM limits count over
_WORDS = (
    "search vector index passage query token model ranking fusion document chunk embedding "
    "latency throughput limit request server client retry window minute"
).split()


def run_rate_benchmark(
    *, rpm: int, tpm: int, latency: float, seconds: float, concurrency: int, cache_dir: Any
) -> dict[str, Any]:
    """Both runs against a fresh simulator each; returns their figures."""
    texts = _texts(4096, words=36, seed=7)
    # Requests of 64 inputs of ~40 tokens: ~2,500 tokens, so 60 RPM and 150,000 TPM bind together.
    report: dict[str, Any] = {
        "limits": {"rpm": rpm, "tpm": tpm, "latency_ms": latency * 1000, "seconds": seconds},
        "paced": _paced(texts, rpm, tpm, latency, seconds, concurrency, cache_dir),
        "naive_sequential": _naive(texts, rpm, tpm, latency, seconds),
    }
    if seconds < _WINDOW:
        report["note"] = "a run shorter than the limits' minute measures the burst they allow, not a sustained rate"
    return report


def _simulator(rpm: int, tpm: int, latency: float) -> ServerThread:
    """A fresh OpenAI simulator on loopback. It is a test fixture (tests/support), found in the source tree."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "tests" / "support" / "openai_sim.py").is_file() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        from tests.support.openai_sim import create_simulator
        from tests.support.openai_sim_state import SimulatorConfig
    except ImportError as exc:
        raise ConfigError(
            "bench-embeddings runs against the OpenAI simulator in the source tree's tests/support: "
            "run it from a checkout installed with `pip install -e .`"
        ) from exc
    return ServerThread(create_simulator(SimulatorConfig(rpm=rpm, tpm=tpm, latency=latency, dimensions=32)))


def _paced(
    texts: list[str], rpm: int, tpm: int, latency: float, seconds: float, concurrency: int, cache_dir: Any
) -> dict[str, Any]:
    with _simulator(rpm, tpm, latency) as sim:
        options = RemoteOptions(
            base_url=f"{sim.url}/v1", api_key="bench", rpm=rpm, tpm=tpm, concurrency=concurrency, dimensions=32
        )
        embedder: Any = make_embedder("openai/text-embedding-3-small", cache_dir=cache_dir, remote=options)
        began = time.monotonic()
        embedder.client.limiter = RateLimiter(rpm, tpm, sleep=_Deadline(began + seconds).sleep)
        position = 0
        with contextlib.suppress(_TimeUp):
            while time.monotonic() - began < seconds:
                embedder.embed_documents(texts[position : position + 64 * concurrency])
                position = (position + 64 * concurrency) % (len(texts) - 64 * concurrency)
        elapsed = time.monotonic() - began
        embedder.close()
        return _figures(sim, elapsed, tpm)


def _naive(texts: list[str], rpm: int, tpm: int, latency: float, seconds: float) -> dict[str, Any]:
    with _simulator(rpm, tpm, latency) as sim:
        began = time.monotonic()
        limiter = _Unpaced(sleep=_Deadline(began + seconds).sleep)
        client = OpenAIClient(f"{sim.url}/v1", "bench", limiter=limiter, max_retries=1000)
        position = 0
        with contextlib.suppress(_TimeUp):
            while time.monotonic() - began < seconds:
                body = {"model": "text-embedding-3-small", "input": texts[position : position + 64], "dimensions": 32}
                client.post("/embeddings", body, parse=lambda reply: reply["usage"]["total_tokens"])
                position = (position + 64) % (len(texts) - 64)
        elapsed = time.monotonic() - began
        client.close()
        return _figures(sim, elapsed, tpm)


class _TimeUp(Exception):
    """The run's time is over (raised from inside a wait for the rate limit)."""


@dataclass(frozen=True)
class _Deadline:
    """A sleep for the rate limiter that ends the run instead of waiting past its end."""

    at: float

    def sleep(self, seconds: float) -> None:
        left = self.at - time.monotonic()
        if seconds < left:
            time.sleep(seconds)
            return
        time.sleep(max(left, 0.0))
        raise _TimeUp


class _Unpaced(RateLimiter):
    """Sends at once; only a 429's retry-after holds it back."""

    def observe(self, headers: Any) -> None:
        return None


def _figures(sim: ServerThread, elapsed: float, tpm: int) -> dict[str, Any]:
    state = sim.app.state.sim
    accepted = [e for e in state.requests_log if e["status"] == 200]
    tokens = sum(e["tokens"] for e in accepted)
    per_minute = tokens / (elapsed / 60)
    return {
        "elapsed_s": round(elapsed, 1),
        "requests_ok": len(accepted),
        "tokens": tokens,
        "tokens_per_minute": round(per_minute),
        "fraction_of_tpm": round(per_minute / tpm, 4),
        "requests_per_minute": round(len(accepted) / (elapsed / 60), 1),
        "http_429": state.rejected_429,
    }


def _texts(count: int, *, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(words)) + f" #{i}" for i in range(count)]
