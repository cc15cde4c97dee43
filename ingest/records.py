"""Plain records passed between the ingest stages (and on to the index)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from indexes import Chunk  # the passage record is the index's: ingest cuts it, the catalog stores it

__all__ = ["Block", "Chunk", "ChunkingConfig", "FoundFile", "LoadedDocument", "SkippedFile"]


@dataclass(frozen=True)
class Block:
    """One structural piece of a loaded document: a heading or a run of text.

    `page` is the 1-based PDF page the block comes from (None for other formats).
    `level` is the heading level (1-6) for headings and 0 for text.
    """

    text: str
    kind: str = "text"  # "heading" | "text"
    level: int = 0
    page: int | None = None


@dataclass(frozen=True)
class LoadedDocument:
    """A file read and parsed into blocks, ready to be chunked."""

    path: str
    type: str  # "text" | "markdown" | "rst" | "html" | "pdf"
    title: str
    blocks: tuple[Block, ...]
    pages: int | None = None
    attributes: dict[str, object] = field(default_factory=dict)  # e.g. from Markdown front matter


@dataclass(frozen=True)
class FoundFile:
    """A file the walker selected for ingest."""

    path: Path
    size: int
    mtime: float


@dataclass(frozen=True)
class SkippedFile:
    """A file that was not ingested, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class ChunkingConfig:
    """How documents are cut into passages; recorded in the index manifest."""

    max_tokens: int = 256
    overlap_tokens: int = 32
    extra: dict[str, object] = field(default_factory=dict)
