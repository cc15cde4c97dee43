"""OpenAI's vector-store objects built from an index and its state files, and their cursor pages.

A store's files are the records of files attached over /v1 (reconciled with the catalog: a
document removed another way is no longer listed) and every other document of the index, as
`doc-<document id>`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from indexes import Index, IndexNotFound, StoredDocument, store_exists
from indexes.manifest import read_manifest
from ingest import ChunkingConfig, chunking_of
from search.errors import ERROR_FAMILIES, RequestRejected

from ...registry import IndexRegistry
from ..pages import cursor_page, list_object
from .state import BatchRecord, FileRecord, StoreState, default_state, read_files, read_store

Status = Literal["in_progress", "completed", "failed", "cancelled"]
STATUSES: tuple[str, ...] = get_args(Status)
DOC_PREFIX = "doc-"
log = logging.getLogger("semsearch.vector_stores")
_UNREADABLE: tuple[type[Exception], ...] = (*ERROR_FAMILIES, OSError, ValueError, TypeError)  # a damaged folder


class BadRequest(RequestRejected):
    """A vector-store request OpenAI would refuse with a 400 (the message says why)."""

    status_code = 400
    kind = "invalid_request_error"


def store_state(registry: IndexRegistry, name: str) -> tuple[Path, StoreState]:
    """The store's folder and state (IndexNotFound if there is no such index)."""
    folder = registry.folder(name)
    if not store_exists(folder):
        raise IndexNotFound(f"no vector store {name!r}: its index has not been built yet")
    index = registry.service(name).index
    return folder, read_store(folder, default_state(name, index.manifest.created_at))


def store_object(registry: IndexRegistry, name: str) -> dict[str, Any]:
    """OpenAI's `vector_store` object for an index."""
    folder, state = store_state(registry, name)
    stats = registry.service(name).index.stats()
    counts = {status: 0 for status in STATUSES}
    for record in read_files(folder).files.values():
        if record.status != "completed":
            counts[record.status] += 1
    counts["completed"] = stats.counts.documents
    return _store_object(name, state, counts, usage_bytes=stats.size_bytes)


def _store_object(name: str, state: StoreState, counts: dict[str, int], *, usage_bytes: int) -> dict[str, Any]:
    expired = state.expired()
    return {
        "id": name,
        "object": "vector_store",
        "created_at": state.created_at,
        "name": state.name,
        "usage_bytes": usage_bytes,
        "file_counts": {**counts, "total": sum(counts.values())},
        "status": "expired" if expired else "in_progress" if counts["in_progress"] else "completed",
        "expires_after": state.expires_after,
        "expires_at": state.expires_at,
        "last_active_at": state.last_active_at,
        "metadata": state.metadata,
    }


def listed_store(name: str, folder: Path) -> dict[str, Any] | None:
    """What the list orders a store by (id, created_at), read without opening its index; None if unreadable."""
    try:
        return {
            "id": name,
            "created_at": read_store(folder, default_state(name, read_manifest(folder).created_at)).created_at,
        }
    except _UNREADABLE as exc:
        log.warning("vector store %s is left out of the list: %s", name, exc)
        return None


def listed_object(registry: IndexRegistry, name: str) -> dict[str, Any] | None:
    """A store's object for the list; one whose index cannot be opened is listed with what its state files say
    (None if it is gone meanwhile)."""
    try:
        return store_object(registry, name)
    except _UNREADABLE as exc:
        log.warning("vector store %s is listed without its index's figures: %s", name, exc)
    try:
        folder = registry.folder(name)
        state = read_store(folder, default_state(name, read_manifest(folder).created_at))
        records = read_files(folder).files.values()
    except _UNREADABLE:
        return None
    counts = {status: sum(r.status == status for r in records) for status in STATUSES}
    return _store_object(name, state, counts, usage_bytes=0)


def file_objects(registry: IndexRegistry, name: str) -> list[dict[str, Any]]:
    """Every file of a store: attached ones (reconciled with the catalog) and the index's other documents."""
    index = registry.service(name).index
    with index.read() as reader:
        documents = {d.record.path: d for d in reader.documents()}
    chunking = chunking_of(index)
    out, attached = [], set()
    for record in read_files(index.folder).files.values():
        document = documents.get(record.path or "") if record.status == "completed" else None
        if record.status == "completed" and document is None:
            continue  # removed another way
        attached.add(record.path)
        out.append(record_object(name, record, document))
    out += [document_object(name, d, chunking) for path, d in documents.items() if path not in attached]
    return out


def file_object(registry: IndexRegistry, name: str, file_id: str) -> dict[str, Any]:
    """One file of a store (IndexNotFound if the store has no such file)."""
    index = registry.service(name).index
    if file_id.startswith(DOC_PREFIX):
        return document_object(name, find_document(index, file_id), chunking_of(index))
    record = read_files(index.folder).files.get(file_id)
    document: StoredDocument | None = None
    if record is not None and record.status == "completed":
        with index.read() as reader:
            document = reader.document_at(record.path or "")
    if record is None or (record.status == "completed" and document is None):
        raise IndexNotFound(f"vector store {name!r} has no file {file_id!r}")
    return record_object(name, record, document)


def find_document(index: Index, file_id: str) -> StoredDocument:
    number = file_id.removeprefix(DOC_PREFIX)
    document: StoredDocument | None = None
    if number.isdigit() and len(number) < 19:
        with index.read() as reader:
            document = reader.document(int(number))
    if document is None:
        raise IndexNotFound(f"no file {file_id!r} in this vector store")
    return document


def record_object(store: str, record: FileRecord, document: StoredDocument | None) -> dict[str, Any]:
    """OpenAI's `vector_store.file` for a file attached over /v1."""
    attributes = document.record.attributes if document is not None else record.attributes
    return {
        "id": record.id,
        "object": "vector_store.file",
        "created_at": record.created_at,
        "vector_store_id": store,
        "status": record.status,
        "last_error": record.last_error,
        "usage_bytes": record.usage_bytes,
        "attributes": attributes,
        "chunking_strategy": strategy(ChunkingConfig(record.max_tokens, record.overlap_tokens)),
    }


def document_object(store: str, document: StoredDocument, chunking: ChunkingConfig) -> dict[str, Any]:
    """A document ingested another way (a folder, POST /documents), as a completed vector-store file."""
    return {
        "id": f"{DOC_PREFIX}{document.id}",
        "object": "vector_store.file",
        "created_at": int(document.ingested_at or time.time()),
        "vector_store_id": store,
        "status": "completed",
        "last_error": None,
        "usage_bytes": document.record.size,
        "attributes": document.record.attributes,
        "chunking_strategy": strategy(chunking),
    }


def batch_counts(batch: BatchRecord, files: dict[str, FileRecord]) -> dict[str, int]:
    """How many of a batch's files are in each status (as frozen, once a later request took one of them)."""
    if batch.counts is not None:
        return dict(batch.counts)
    counts = {status: 0 for status in STATUSES}
    for file_id in batch.file_ids:
        record = files.get(file_id)
        if record is not None and record.batch_id == batch.id:
            counts[record.status] += 1
    return counts


def batch_object(store: str, batch: BatchRecord, files: dict[str, FileRecord]) -> dict[str, Any]:
    """OpenAI's `vector_store.files_batch`, its counts from its files' records."""
    counts = batch_counts(batch, files)
    total = sum(counts.values())
    if counts["in_progress"]:
        status = "in_progress"
    elif batch.cancelled:
        status = "cancelled"
    else:
        status = "failed" if total and counts["failed"] == total else "completed"
    return {
        "id": batch.id,
        "object": "vector_store.files_batch",
        "created_at": batch.created_at,
        "vector_store_id": store,
        "status": status,
        "file_counts": {**counts, "total": total},
    }


def strategy(chunking: ChunkingConfig) -> dict[str, Any]:
    """The chunking a file was cut with, as OpenAI reports it (auto is reported as the static sizes it used)."""
    static = {"max_chunk_size_tokens": chunking.max_tokens, "chunk_overlap_tokens": chunking.overlap_tokens}
    return {"type": "static", "static": static}


def page(
    items: Sequence[dict[str, Any]],
    *,
    limit: int,
    order: str,
    after: str | None,
    before: str | None,
    scope: str = "",
    keep: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """A cursor page of objects ordered by (created_at, id), as OpenAI's list routes return them.

    `scope` names the list for cursors of deleted objects (`pages.forget`); `keep` filters after the cursors.
    """
    data, more = cursor_page(
        items, scope=scope, position=position, limit=limit, order=order, after=after, before=before, keep=keep
    )
    return list_object(list(data), more)


def position(item: dict[str, Any]) -> tuple[int, str]:
    """Where an object stands in its list."""
    return item["created_at"], item["id"]
