"""Which store holds an index, from its manifest: open, create or probe an index folder whatever its store.

The local store (`LocalIndex`) is the default and needs nothing more than the folder. A Milvus index
(`indexes.milvus.MilvusIndex`) also needs the Milvus URI (kept in the manifest, or given) and a token
(never written to disk); pymilvus is imported only when a Milvus index is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .catalog import BUSY_TIMEOUT
from .errors import IndexNotFound, IndexStoreError
from .manifest import MANIFEST_NAME, Manifest, read_manifest
from .protocols import Index
from .store import LocalIndex

STORES = ("local", "milvus")


@dataclass(frozen=True)
class MilvusOptions:
    """How to reach Milvus: `uri` overrides the manifest's (a Lite file path or a server URL), `token` is the
    server's credential (user:password or an API key), `timeout` bounds every request in seconds."""

    uri: str = ""
    token: str | None = None
    timeout: float = 10.0


def store_exists(folder: Path) -> bool:
    """Whether `folder` holds an index (of any store)."""
    return (folder / MANIFEST_NAME).exists()


def open_store(folder: Path, *, busy_timeout: float = BUSY_TIMEOUT, milvus: MilvusOptions | None = None) -> Index:
    """Open the index at `folder` in the store its manifest names, or raise `IndexNotFound`."""
    if not store_exists(folder):
        raise IndexNotFound(f"no index at {folder}: run `semsearch ingest PATH --index {folder}` first")
    manifest = read_manifest(folder)
    if manifest.store == "local":
        return LocalIndex.open(folder, busy_timeout=busy_timeout)
    if manifest.store == "milvus":
        from .milvus.store import MilvusIndex  # pymilvus takes ~0.8 s to import: only for Milvus indexes

        index: Index = MilvusIndex.open(folder, manifest, milvus or MilvusOptions())
        return index
    raise IndexStoreError(f"{folder} names the store {manifest.store!r}; this semsearch knows {', '.join(STORES)}")


def create_store(folder: Path, manifest: Manifest, *, milvus: MilvusOptions | None = None) -> Index:
    """Create a new, empty index at `folder` in `manifest.store`."""
    if manifest.store == "local":
        return LocalIndex.create(folder, manifest)
    if manifest.store == "milvus":
        from .milvus.store import MilvusIndex

        index: Index = MilvusIndex.create(folder, manifest, milvus or MilvusOptions())
        return index
    raise IndexStoreError(f"unknown store {manifest.store!r}; use one of {', '.join(STORES)}")
