"""Attaching /v1 files to a vector store, and what every vector-store route checks first."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from fastapi import Request

from ingest import chunking_of
from search.errors import Forbidden, InvalidQuery

from ...documents import check_attributes
from ...error_shapes import BadParam
from ...registry import IndexRegistry
from ..files import file_store
from .objects import BadRequest, batch_counts, store_state
from .schemas import AutoChunking, Chunking
from .state import BatchRecord, FileRecord, editing_files, touch
from .worker import Task, VectorStoreWorker

Item = tuple[str, dict[str, Any] | None, Chunking | None]  # file id, attributes, chunking strategy


def registry_of(request: Request) -> IndexRegistry:
    registry: IndexRegistry = request.app.state.registry
    return registry


def worker_of(request: Request) -> VectorStoreWorker:
    worker: VectorStoreWorker = request.app.state.vector_store_worker
    return worker


def allowed(request: Request, store: str, *, creating: bool = False) -> None:
    """403 unless the caller's key may use this store."""
    principal = request.state.principal
    if principal.may_use(store):
        return
    if creating:
        raise Forbidden(
            f"API key {principal.id} reaches only some indexes: "
            "creating a vector store needs a key without an index scope"
        )
    raise Forbidden(f"API key {principal.id} has no access to the vector store {store!r}")


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """OpenAI's limits: up to 16 pairs, keys up to 64 characters, values up to 512."""
    if len(metadata) > 16:
        raise BadParam("metadata: at most 16 key-value pairs", "metadata")
    for key, value in metadata.items():
        if not 1 <= len(key) <= 64:
            raise BadParam(f"metadata: the key {key[:80]!r} is not 1 to 64 characters long", "metadata")
        if len(value) > 512:
            raise BadParam(f"metadata.{key}: the value is longer than 512 characters", f"metadata.{key}")
    return metadata


def chunking_for(requested: Chunking | None, index_sizes: tuple[int, int], model_max: int) -> tuple[int, int]:
    """The (passage size, overlap) in tokens a file is cut with: the index's for `auto`, else the static
    sizes asked for, a size above what the model reads clamped to it (the overlap scaled with it)."""
    if requested is None or isinstance(requested, AutoChunking):
        return index_sizes
    size, overlap = requested.static.max_chunk_size_tokens, requested.static.chunk_overlap_tokens
    if overlap > size // 2:
        param = "chunking_strategy.static.chunk_overlap_tokens"
        raise BadParam(f"{param}: at most half of max_chunk_size_tokens", param)
    used = min(size, model_max)
    return used, min(overlap * used // size, used // 2 - 1)  # the chunker wants the overlap below half


def attach(request: Request, store: str, items: Sequence[Item], *, batch_id: str | None) -> list[FileRecord]:
    """Record each file `in_progress` in the store (and the batch, if any) and queue its ingest."""
    registry = registry_of(request)
    folder, state = store_state(registry, store)
    if state.expired():
        raise BadRequest(f"vector store {store!r} has expired: extend expires_after before adding files")
    service = registry.service(store)
    index_chunking = chunking_of(service.index)
    sizes = (index_chunking.max_tokens, index_chunking.overlap_tokens)
    now = int(time.time())
    records = []
    for file_id, attributes, chunking in items:
        file = file_store(request).get(file_id)  # an unknown id is a 404 before anything is queued
        size, overlap = chunking_for(chunking, sizes, service.embedder.max_tokens)
        try:
            checked = check_attributes(dict(attributes or {}))
        except InvalidQuery as exc:
            raise BadParam(str(exc), "attributes") from exc
        records.append(
            FileRecord(file_id, now, file.filename, "in_progress", size, overlap, checked, batch_id=batch_id)
        )
    with editing_files(folder) as files:
        for record in records:  # attached again: its document is made anew, cut and attributed as asked now
            previous = files.files.get(record.id)
            earlier = files.batches.get(previous.batch_id) if previous and previous.batch_id else None
            if earlier is not None and earlier.id != batch_id and earlier.counts is None:
                files.batches[earlier.id] = replace(earlier, counts=batch_counts(earlier, files.files))
            files.files[record.id] = replace(record, path=previous.path) if previous else record
        if batch_id is not None:
            files.batches[batch_id] = BatchRecord(batch_id, now, tuple(r.id for r in records))
    worker_of(request).submit(Task(store, r.id, batch_id) for r in records)
    touch(folder, state, now)
    return records
