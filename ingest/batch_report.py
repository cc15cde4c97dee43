"""What the batches of one `ingest --batch` run did, and what they cost beside the synchronous path."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .openai_models import price_of
from .summary import IngestSummary


@dataclass
class BatchReport:
    """What the batches of one run did."""

    submitted: int = 0  # batches this run created
    submitted_inputs: int = 0
    submitted_tokens: int = 0
    submitted_requests: int = 0
    resumed: int = 0  # batches an earlier run recorded
    collected: int = 0
    delivered: int = 0  # vectors the collected batches delivered
    billed_tokens: int = 0  # of the request lines that succeeded (billed at the batch price)
    failed_lines: int = 0
    pending: int = 0  # batches still running when this run stopped waiting
    abandoned: int = 0  # cancelled after --batch-timeout but not stopped in time (still recorded)
    statuses: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # "batch: why" of those forgotten undelivered (gone, expired)
    api_requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "statuses"}
        return {**out, "statuses": dict(self.statuses)}


def batch_costs(model: str, report: BatchReport, summary: IngestSummary) -> dict[str, float | None]:
    """US$ paid through batches (at the batch price) and synchronously, and what all of it would cost synchronously."""
    batch, fallback = _usd(model, report.billed_tokens, batch=True), _usd(model, summary.embedded_tokens)
    return {
        "batch": batch,
        "fallback": fallback,
        "total": None if batch is None or fallback is None else round(batch + fallback, 6),
        "synchronous": _usd(model, report.billed_tokens + summary.embedded_tokens),
    }


def _usd(model: str, tokens: int, *, batch: bool = False) -> float | None:
    price = price_of(model, tokens, batch=batch)
    return None if price is None else round(price, 6)


def estimated_costs(model: str, report: BatchReport) -> dict[str, float | None]:
    """US$ for what a dry run would submit: at the batch price, and synchronously."""
    return {
        "batch": _usd(model, report.submitted_tokens, batch=True),
        "synchronous": _usd(model, report.submitted_tokens),
    }
