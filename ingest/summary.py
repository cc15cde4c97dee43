"""What one ingest run did: counts and timings, as the CLI, the jobs API and metrics report them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .records import SkippedFile


@dataclass
class IngestSummary:
    """Counts and timings of one ingest run."""

    seen: int = 0
    ingested: int = 0
    unchanged: int = 0
    removed: int = 0
    resumed: int = 0  # documents an interrupted run had staged whole, published now without embedding again
    skipped: list[SkippedFile] = field(default_factory=list)
    chunks: int = 0
    tokens: int = 0
    embedded: int = 0  # chunks sent to the embedder (the rest reused stored vectors)
    embedded_tokens: int = 0
    from_batch: int = 0  # chunks whose vectors a Batch API run delivered (`ingest --batch`)
    from_batch_tokens: int = 0
    elapsed: float = 0.0
    embed_seconds: float = 0.0
    dry_run: bool = False
    upstream: dict[str, float | int] = field(default_factory=dict)  # requests, retries, 429s, TPM
    batch: dict[str, Any] = field(default_factory=dict)  # what `ingest --batch` submitted, resumed, collected

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "files_seen": self.seen,
            "ingested": self.ingested,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "resumed": self.resumed,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "chunks": self.chunks,
            "tokens": self.tokens,
            "embedded": self.embedded,
            "embedded_tokens": self.embedded_tokens,
            "elapsed_seconds": round(self.elapsed, 3),
            "embed_seconds": round(self.embed_seconds, 3),
            "chunks_per_second": round(self.chunks_per_second, 2),
            "dry_run": self.dry_run,
        }
        if self.upstream:
            out["upstream"] = self.upstream
        if self.batch:
            out["batch"] = {"from_batch": self.from_batch, "from_batch_tokens": self.from_batch_tokens, **self.batch}
        return out
