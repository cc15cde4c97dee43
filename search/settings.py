"""Settings: the one place that reads the environment (`Settings.from_env`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from ingest import DEFAULT_EMBEDDING_MODEL, RemoteOptions
from search.answers.chat_models import DEFAULT_CHAT_MODEL


def default_index_dir() -> Path:
    """The per-user data folder's index (never inside the source tree)."""
    return Path(platformdirs.user_data_dir("semsearch", appauthor=False)) / "index"


def default_cache_dir() -> Path:
    """Where built model files are cached."""
    return Path(platformdirs.user_cache_dir("semsearch", appauthor=False))


_NO_CHAT = ("none", "off", "extractive")


@dataclass(frozen=True)
class Settings:
    """Everything the CLI and the app need to know, with defaults."""

    index_dir: Path
    cache_dir: Path
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    chat_model: str | None = None  # "openai/NAME"; None: extractive answers
    chat_base_url: str | None = None
    chat_context_window: int | None = None
    min_score: float = 0.25
    moderate: bool = False
    named_indexes: dict[str, Path] = field(default_factory=dict)  # served besides the default one
    index_root: Path | None = None  # where POST /indexes creates indexes; its subfolders are served
    ingest_roots: tuple[Path, ...] = ()  # folders POST /ingest may read; none by default
    watch_paths: tuple[Path, ...] = ()  # folders the server keeps the default index in sync with
    api_keys: str | None = None  # SEMSEARCH_API_KEYS: "key1,key2:ro"
    api_keys_file: Path | None = None
    rate_limit: float = 0.0  # requests per minute per API key; 0: no limit
    max_upload_bytes: int = 50 * 2**20
    max_files: int = 20  # per upload request
    max_query_chars: int = 4000  # can only tighten the built-in cap
    max_k: int = 100  # likewise
    reranker: str | None = None  # an http(s) base URL with /rerank, or a cross-encoder folder
    rerank_model: str | None = None
    rerank_depth: int = 30

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `SEMSEARCH_*` and `OPENAI_*` variables, falling back to defaults."""
        env = os.environ if environ is None else environ
        return cls(
            index_dir=Path(env.get("SEMSEARCH_INDEX") or default_index_dir()).expanduser(),
            cache_dir=Path(env.get("SEMSEARCH_CACHE_DIR") or default_cache_dir()).expanduser(),
            embedding_model=env.get("SEMSEARCH_EMBEDDING_MODEL") or DEFAULT_EMBEDDING_MODEL,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            chat_model=_chat_model(env),
            chat_base_url=env.get("SEMSEARCH_CHAT_BASE_URL") or None,
            chat_context_window=int(env["SEMSEARCH_CHAT_CONTEXT_WINDOW"]) if env.get("SEMSEARCH_CHAT_CONTEXT_WINDOW") else None,
            min_score=float(env.get("SEMSEARCH_MIN_SCORE") or 0.25),
            moderate=(env.get("SEMSEARCH_MODERATE") or "").lower() in ("1", "true", "yes", "on"),
            named_indexes=_named(env.get("SEMSEARCH_INDEXES") or ""),
            index_root=Path(env["SEMSEARCH_INDEX_ROOT"]).expanduser() if env.get("SEMSEARCH_INDEX_ROOT") else None,
            ingest_roots=tuple(Path(p).expanduser() for p in (env.get("SEMSEARCH_INGEST_ROOTS") or "").split(os.pathsep) if p),
            api_keys=env.get("SEMSEARCH_API_KEYS") or None,
            api_keys_file=Path(env["SEMSEARCH_API_KEYS_FILE"]).expanduser() if env.get("SEMSEARCH_API_KEYS_FILE") else None,
            rate_limit=float(env.get("SEMSEARCH_RATE_LIMIT") or 0),
            max_upload_bytes=int(float(env.get("SEMSEARCH_MAX_UPLOAD_MB") or 50) * 2**20),
            max_files=int(env.get("SEMSEARCH_MAX_FILES") or 20),
            max_query_chars=int(env.get("SEMSEARCH_MAX_QUERY_CHARS") or 4000),
            max_k=int(env.get("SEMSEARCH_MAX_K") or 100),
            reranker=env.get("SEMSEARCH_RERANKER") or None,
            rerank_model=env.get("SEMSEARCH_RERANK_MODEL") or None,
            rerank_depth=int(env.get("SEMSEARCH_RERANK_DEPTH") or 30),
        )

    def with_index(self, index_dir: Path | None) -> Settings:
        """A copy pointing at another index folder (a `--index` flag)."""
        return self if index_dir is None else replace(self, index_dir=index_dir.expanduser())

    def updated(self, **overrides: object) -> Settings:
        """A copy with the flags that were given (None means not given)."""
        given: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
        if str(given.get("chat_model", "")).lower() in _NO_CHAT:
            given["chat_model"] = None
        return replace(self, **given)  # type: ignore[arg-type]

    def remote(self, **overrides: object) -> RemoteOptions:
        """How to reach the OpenAI-compatible server: the environment, then flags that were given."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return RemoteOptions(**{"base_url": self.openai_base_url, "api_key": self.openai_api_key, **given})  # type: ignore[arg-type]


def _chat_model(env: Mapping[str, str]) -> str | None:
    """SEMSEARCH_CHAT_MODEL; else gpt-4o-mini when an OpenAI key is set; "none" turns chat off."""
    named = env.get("SEMSEARCH_CHAT_MODEL")
    if named:
        return None if named.lower() in _NO_CHAT else named
    return DEFAULT_CHAT_MODEL if env.get("OPENAI_API_KEY") else None


def _named(spec: str) -> dict[str, Path]:
    """`SEMSEARCH_INDEXES`: comma-separated NAME=FOLDER pairs."""
    pairs = [part.split("=", 1) for part in spec.split(",") if part.strip()]
    return {name.strip(): Path(folder.strip()).expanduser() for name, folder in (p for p in pairs if len(p) == 2)}
