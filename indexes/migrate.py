"""Copy an index into another store (local <-> Milvus) without embedding anything again.

The source is only read (one snapshot); the copy is a new index whose manifest is the source's with
the other store. Passages, text hashes and vectors are staged in batches and published at once, so a
copy that fails leaves nothing half-visible, and `copy_index` removes it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import IndexExists, IndexStoreError
from .manifest import FORMAT_VERSION, LOCAL_FORMAT, MANIFEST_NAME
from .protocols import Index
from .records import ChunkRecord, DocumentRecord, PublishResult
from .stores import STORES, MilvusOptions, create_store, store_exists

BATCH_PASSAGES = 1_000  # passages staged per call
UPLOADS = "uploads"  # originals uploaded over HTTP, kept in the index folder
CARRIED = ("vector_store.json", "vector_store_files.json")  # what the OpenAI wire API keeps beside an index
Progress = Callable[[int, int], None]  # (documents copied, documents in all)


def copy_index(
    source: Index,
    target_folder: Path,
    store: str,
    *,
    milvus: MilvusOptions | None = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Copy every document of `source` into a new index at `target_folder` in `store`."""
    if store not in STORES:
        raise IndexStoreError(f"unknown store {store!r}; use one of {', '.join(STORES)}")
    if store_exists(target_folder):
        raise IndexExists(f"an index already exists at {target_folder}: name a new folder with --into")
    if target_folder.is_dir() and any(target_folder.iterdir()):
        raise IndexExists(f"{target_folder} is not empty: name a new (or empty) folder with --into")
    made_folder = not target_folder.exists()
    manifest = replace(
        source.manifest,
        store=store,
        milvus_uri="",
        milvus_collection="",
        format_version=FORMAT_VERSION if store == "milvus" else LOCAL_FORMAT,
    )
    target = create_store(target_folder, manifest, milvus=milvus)
    try:
        result = _copy(source, target, progress)
    except BaseException:
        _discard(target, target_folder, made_folder)
        raise
    target.close()
    return result


def _copy(source: Index, target: Index, progress: Progress | None) -> PublishResult:
    documents = passages = 0
    pending: list[tuple[DocumentRecord, Sequence[ChunkRecord]]] = []
    old, new = _carry(source.folder, target.folder)
    with source.read() as reader, target.writer() as writer:
        total = reader.counts().documents
        for document, chunks in reader.export():
            # An upload kept in the source's folder is the copy's own now.
            pending.append((replace(document, path=_renamed(document.path, old, new)), chunks))
            documents, passages = documents + 1, passages + len(chunks)
            if passages >= BATCH_PASSAGES:
                writer.stage_many(pending)
                pending, passages = [], 0
                if progress is not None:
                    progress(documents, total)
        if pending:
            writer.stage_many(pending)
        result = writer.publish()
        writer.finish()
    if progress is not None:
        progress(documents, total)
    return result


def _carry(source: Path, target: Path) -> tuple[str, str]:
    """Copy what the source's folder keeps beside its store (uploaded originals, the OpenAI vector-store
    records) into the target's, naming the target's folder where they named the source's; returns the two
    folder prefixes (absolute, with a trailing separator) for the documents' paths."""
    old, new = str(source.resolve()) + os.sep, str(target.resolve()) + os.sep
    if (source / UPLOADS).is_dir():
        shutil.copytree(source / UPLOADS, target / UPLOADS, dirs_exist_ok=True)
    for name in CARRIED:
        if (source / name).is_file():
            value = _renamed(json.loads((source / name).read_text(encoding="utf-8")), old, new)
            (target / name).write_text(json.dumps(value), encoding="utf-8")
    return old, new


def _renamed(value: Any, old: str, new: str) -> Any:
    """A JSON value with every string under the `old` folder moved under `new`."""
    if isinstance(value, str):
        return new + value[len(old) :] if value.startswith(old) else value
    if isinstance(value, list):
        return [_renamed(item, old, new) for item in value]
    if isinstance(value, dict):
        return {key: _renamed(item, old, new) for key, item in value.items()}
    return value


def _discard(target: Index, folder: Path, made_folder: bool) -> None:
    """Remove a copy that failed: its collections (Milvus) and what it wrote in its folder (empty before)."""
    try:
        target.drop()
    finally:
        target.close()
        (folder / MANIFEST_NAME).unlink(missing_ok=True)  # first: a folder half emptied is no index
        if made_folder:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for child in folder.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
