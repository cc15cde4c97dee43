"""`ingest --batch`: embed what an ingest would embed through OpenAI's Batch API, at half the price.

Three phases around the normal pipeline. Collect: a dry run hands over the embedding input of every passage
to embed; those with no stored vector, no delivered one and no recorded batch are packed into JSONL input
files, each uploaded, recorded in the index and submitted as a batch as soon as it is full. Wait: every
recorded batch is polled until it ends (or `timeout`, then cancelled); its output's vectors are kept by text
hash. Ingest: the normal run finds those vectors stored and embeds whatever no batch delivered (a failed,
expired or cancelled batch, error lines, unusable lines) synchronously. An output file is downloaded to a
temporary file and its vectors kept a part at a time, so memory does not grow with it. A run killed at any
point is resumed by the next: recorded batches are polled again, never submitted twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from indexes import BatchLedger, Index, RecordedBatch

from .batch_api import BatchClient, BatchState, for_good
from .batch_files import MAX_BATCH_INPUTS, Delivered, RequestFile, RequestFiles, read_errors, read_output
from .batch_report import BatchReport, batch_costs, estimated_costs
from .errors import UpstreamRejected
from .openai_embedder import OpenAIEmbedder
from .pipeline import Progress, Source, ingest
from .records import ChunkingConfig
from .run import hash_text
from .summary import IngestSummary

CANCEL_GRACE = 600.0  # seconds a cancelled batch may take to stop (OpenAI: up to 10 minutes)
ProgressFor = Callable[[str], AbstractContextManager[Progress | None]]


@dataclass(frozen=True)
class BatchOptions:
    """How `ingest --batch` waits: poll every `poll_interval` s; stop (cancelling) after `timeout` s."""

    wait: bool = True
    poll_interval: float = 30.0
    timeout: float | None = None
    max_inputs: int = MAX_BATCH_INPUTS  # embedding inputs per batch
    cancel_grace: float = CANCEL_GRACE


class BatchRun:
    """Submits, records, polls and collects the batches of one `ingest --batch` run."""

    def __init__(
        self,
        ledger: BatchLedger | None,
        api: BatchClient | None,
        embedder: OpenAIEmbedder,
        options: BatchOptions,
        *,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.ledger, self.api, self.embedder, self.options, self.say = ledger, api, embedder, options, say
        self.files: RequestFiles  # while `submit_all` runs
        self.seen: set[str] = set()
        self.report = BatchReport()
        self.states: dict[str, BatchState] = {}
        self.report.resumed = len(ledger.open_batches()) if ledger else 0
        self._last_line = ""
        self._requests: dict[str, int] = {}  # request lines of every batch this run polled, by input file

    def submit_all(
        self,
        index: Index | None,
        source: Source,
        *,
        chunking: ChunkingConfig | None = None,
        batch_size: int | None = None,
        progress: Progress | None = None,
    ) -> IngestSummary:
        """A dry run of `source` whose passages to embed are submitted (or, with no client, counted)."""
        embedder = self.embedder
        self.files = RequestFiles(embedder.model, embedder.request_dimensions, max_inputs=self.options.max_inputs)
        try:
            summary = ingest(
                index,
                self.embedder,
                source,
                chunking=chunking,
                batch_size=batch_size,
                progress=progress,
                dry_run=True,
                collect=self.collect,
            )
            for full in self.files.finish():
                self._submit(full)
        finally:
            self.files.close()
        return summary

    def collect(self, texts: list[str], counts: list[int]) -> None:
        """Take a dry run's embedding inputs; submit each input file as soon as it is full."""
        hashes = [hash_text(text) for text in texts]
        covered = self.ledger.covered(sorted(set(hashes))) if self.ledger else set()
        for text, text_hash, tokens in zip(texts, hashes, counts):
            if text_hash in covered or text_hash in self.seen or not text.strip():
                continue
            self.seen.add(text_hash)
            for full in self.files.add(text_hash, text, tokens):
                self._submit(full)

    def _submit(self, file: RequestFile) -> None:
        """Upload, record, then create: a batch is in the index before it costs anything."""
        report = self.report
        report.submitted_requests += len(file.requests)
        report.submitted_inputs += file.inputs
        report.submitted_tokens += file.tokens
        if self.api is None or self.ledger is None:  # an estimate (--dry-run)
            report.submitted += 1
            file.close()
            return
        try:
            file_id = self.api.upload(f"semsearch-{int(time.time())}-{report.submitted}.jsonl", file.stream)
        finally:
            file.close()
        self.ledger.record(file_id, file.requests, file.tokens)
        try:
            state = self.api.create(file_id, self._metadata())
        except UpstreamRejected:  # refused, so nothing runs or costs: forget it
            self.ledger.forget(file_id)
            self.api.delete_file(file_id)
            raise
        self.ledger.update(file_id, state.status, state.id)
        self.states[file_id] = state
        report.submitted += 1
        self.say(f"Submitted batch {state.id}: {file.inputs:,} passages in {len(file.requests):,} requests")

    def _metadata(self) -> dict[str, str]:
        folder = self.ledger.index.folder.name if self.ledger else ""
        return {"created_by": "semsearch ingest --batch", "index": folder[:500]}

    def poll(self, progress: Progress | None = None) -> None:
        """Poll the recorded batches, collecting each as it ends; without `wait`, one pass."""
        assert self.ledger is not None and self.api is not None
        began, cancelled_at = time.monotonic(), None
        while True:
            batches = self.ledger.open_batches()
            for batch in batches:
                self._step(batch)
            batches = self.ledger.open_batches()
            self._show(batches, progress)
            now = time.monotonic()
            if not batches or not self.options.wait:
                break
            if cancelled_at is None and self.options.timeout is not None and now - began >= self.options.timeout:
                self._cancel(batches)
                cancelled_at = now
            if cancelled_at is not None and now - cancelled_at >= self.options.cancel_grace:
                break
            time.sleep(self.options.poll_interval)
        self.report.pending = len(batches)

    def _step(self, batch: RecordedBatch) -> None:
        """Bring one recorded batch forward: create it if a killed run could not, poll it, collect it."""
        assert self.ledger is not None and self.api is not None
        self._requests[batch.input_file_id] = batch.requests
        try:
            if batch.batch_id is None:
                state = self.api.find(batch.input_file_id) or self.api.create(batch.input_file_id, self._metadata())
            else:
                state = self.api.retrieve(batch.batch_id)
        except UpstreamRejected as exc:
            if not for_good(exc):
                raise
            self._lose(batch, "gone from the server" if exc.status == 404 else str(exc))
            return
        if (state.id, state.status) != (batch.batch_id, batch.status):
            self.ledger.update(batch.input_file_id, state.status, state.id)
        self.states[batch.input_file_id] = state
        if state.done:
            self._collect(batch, state)

    def _collect(self, batch: RecordedBatch, state: BatchState) -> None:
        """Keep a finished batch's vectors (a part at a time), forget the batch, delete its files on the server."""
        assert self.ledger is not None and self.api is not None
        got = Delivered()
        lost = self._read_files(batch, state, got)
        self.ledger.forget(batch.input_file_id)
        for file_id in (batch.input_file_id, state.output_file_id, state.error_file_id):
            if file_id:
                self.api.delete_file(file_id)
        report = self.report
        report.collected += 1
        report.delivered += got.vectors
        report.billed_tokens += got.tokens
        report.failed_lines += got.failed_lines
        report.statuses[state.status] += 1
        if lost:
            report.lost.append(f"{state.id}: {lost}")
        if got.vectors < batch.inputs:
            why = lost or "; ".join(state.errors[:3]) or got.first_error or "no output"
            self.say(
                f"Batch {state.id} {state.status}: {got.vectors:,} of {batch.inputs:,} passages delivered; "
                f"the rest are embedded synchronously ({why})"
            )

    def _read_files(self, batch: RecordedBatch, state: BatchState, got: Delivered) -> str:
        """Read a finished batch's output and error files into `got`; why not all of them, if a file is gone."""
        assert self.ledger is not None and self.api is not None
        try:
            if state.output_file_id:
                requests = self.ledger.requests_of(batch.input_file_id)
                with self.api.download(state.output_file_id) as lines:
                    read_output(lines, requests, self.embedder.parse_vectors, got, self.ledger.keep)
            if state.error_file_id:
                with self.api.download(state.error_file_id) as lines:
                    read_errors(lines, got)
        except UpstreamRejected as exc:
            if not for_good(exc):
                raise
            return f"its files could not be downloaded ({exc})"
        return ""

    def _lose(self, batch: RecordedBatch, why: str) -> None:
        """Forget a batch the server will never run or deliver; its passages are embedded synchronously."""
        assert self.ledger is not None and self.api is not None
        name = batch.batch_id or f"over {batch.input_file_id}"
        self.say(f"Batch {name} cannot be collected: {why}; its passages are embedded synchronously")
        self.ledger.forget(batch.input_file_id)
        self.api.delete_file(batch.input_file_id)
        self.report.lost.append(f"{name}: {why}")

    def _cancel(self, batches: list[RecordedBatch]) -> None:
        assert self.api is not None
        self.say(
            f"Waited {self.options.timeout:g} s: cancelling {len(batches)} batches; "
            "what they did not finish is embedded synchronously"
        )
        for batch in batches:
            if batch.batch_id is not None:
                self.api.cancel(batch.batch_id)

    def _show(self, batches: list[RecordedBatch], progress: Progress | None) -> None:
        """Request counts: a bar on a terminal (over every batch this run polled), else a line when they change."""
        running = [self.states[b.input_file_id] for b in batches if b.input_file_id in self.states]
        open_ids = {b.input_file_id for b in batches}
        total = sum(self._requests.values())
        done = sum(n for k, n in self._requests.items() if k not in open_ids)
        done += sum(min(s.completed + s.failed, self._requests.get(s.input_file_id, 0)) for s in running)
        if progress is not None:
            progress(done, total)
            return
        kinds = Counter(s.status for s in running)
        line = f"Batches: {len(batches)} running ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
        line += f"requests {done:,}/{total:,} done, {sum(s.failed for s in running):,} failed"
        if batches and line != self._last_line:
            self.say(line)
            self._last_line = line


def ingest_in_batches(
    index: Index,
    embedder: OpenAIEmbedder,
    source: Source,
    api: BatchClient,
    options: BatchOptions,
    *,
    chunking: ChunkingConfig | None = None,
    batch_size: int | None = None,
    progress_for: ProgressFor | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> IngestSummary:
    """Collect, submit and wait for batches, then ingest with their vectors (the summary says how many)."""
    bars: ProgressFor = progress_for or (lambda _: nullcontext(None))
    ledger = index.ledger()
    with ledger.locked():
        run = BatchRun(ledger, api, embedder, options, say=say)
        if run.report.resumed:
            say(f"Resuming {run.report.resumed} batches recorded by an earlier run")
        with bars("Collecting") as progress:
            run.submit_all(index, source, chunking=chunking, batch_size=batch_size, progress=progress)
        with bars("Batch requests") as progress:
            run.poll(progress)
    run.report.api_requests = api.requests
    report = run.report
    if report.pending and options.wait and options.timeout is not None:  # still cancelling: go on without them
        say(f"{report.pending} cancelled batches have not stopped yet: their passages are embedded synchronously")
        report.abandoned, report.pending = report.pending, 0
    if report.pending:  # --no-batch-wait: a later run collects them
        summary = IngestSummary()
    else:
        with bars("Ingesting") as progress:
            summary = ingest(index, embedder, source, chunking=chunking, batch_size=batch_size, progress=progress)
    summary.batch = {**run.report.as_dict(), "cost_usd": batch_costs(embedder.model, run.report, summary)}
    return summary


def estimate_batches(
    index: Index | None,
    embedder: OpenAIEmbedder,
    source: Source,
    *,
    chunking: ChunkingConfig | None = None,
    max_inputs: int = MAX_BATCH_INPUTS,
) -> IngestSummary:
    """A dry run that also counts the batches, requests and tokens `ingest --batch` would submit."""
    run = BatchRun(index.ledger() if index is not None else None, None, embedder, BatchOptions(max_inputs=max_inputs))
    summary = run.submit_all(index, source, chunking=chunking)
    report = run.report
    summary.batch = {**report.as_dict(), "cost_usd": estimated_costs(embedder.model, report)}
    return summary
