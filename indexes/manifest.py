"""The manifest (`config.json`): what an index was built with, checked on every open."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import DimensionMismatch, IndexCorrupt

FORMAT_VERSION = 3  # 2: vectors in segments (an older semsearch would look for vectors-N.faiss); 3: a Milvus store
LOCAL_FORMAT = 2  # what a local index writes: older semsearch versions still open it
MANIFEST_NAME = "config.json"


@dataclass(frozen=True)
class Manifest:
    """Embedding model, vector size, metric, chunking and FAISS settings of one index."""

    embedding_model: str  # "provider/name"
    dimension: int
    chunking: dict[str, Any] = field(default_factory=dict)
    embedder: dict[str, Any] = field(default_factory=dict)  # base URL, options; never a key
    metric: str = "inner_product"
    index_type: str = "auto"  # segments flat when small, HNSW from `vectors.ANN_MIN_VECTORS` vectors on
    vector_storage: str = "f32"  # f32 | f16 | sq8 (`vectors.STORAGES`)
    store: str = "local"  # local (FAISS + SQLite in the folder) | milvus
    milvus_uri: str = ""  # a Milvus Lite file (relative to the folder when inside it) or a server URL; never a token
    milvus_collection: str = ""  # the prefix of the index's collections
    format_version: int = LOCAL_FORMAT
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def check_model(self, model: str, dimension: int) -> None:
        """Raise `DimensionMismatch` unless `model`/`dimension` are what the index was built with."""
        if model != self.embedding_model or dimension != self.dimension:
            raise DimensionMismatch(
                f"this index was built with {self.embedding_model} ({self.dimension} dims), "
                f"not {model} ({dimension} dims); use the same embedding model "
                "or ingest into a new index folder"
            )


def read_manifest(folder: Path) -> Manifest:
    """Load and validate `config.json` from an index folder."""
    path = folder / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise IndexCorrupt(f"cannot read the index manifest {path}: {exc}") from exc
    if manifest.format_version > FORMAT_VERSION:
        raise IndexCorrupt(
            f"{path} has format version {manifest.format_version}; this semsearch reads up to "
            f"{FORMAT_VERSION}: upgrade semsearch"
        )
    return manifest


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write `config.json` atomically (temp file, fsync, rename)."""
    fields = asdict(manifest)
    if manifest.store == "local":  # an older semsearch refuses fields it does not know: a local index has none
        for name in ("store", "milvus_uri", "milvus_collection"):
            del fields[name]
    write_atomic(folder / MANIFEST_NAME, json.dumps(fields, indent=2).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
