"""Settings: every default and limit of the service, read from the environment once (`Settings.from_env`).

Each field names its variable; a value that does not parse or is out of range is one
`ConfigError` naming the variable and what it accepts. The CLI's defaults, the HTTP
limits and the service all come from here; flags given on the command line override
the environment through `updated()`, which validates them the same way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from indexes import MilvusOptions
from ingest import DEFAULT_EMBEDDING_MODEL, RemoteOptions

from .answers.chat_models import DEFAULT_CHAT_MODEL
from .errors import ConfigError, InvalidQuery

DEFAULT_K = 10  # passages a search returns
DEFAULT_ASK_K = 8  # passages an answer is drawn from
MAX_K = 100  # the built-in cap on k; SEMSEARCH_MAX_K can only lower it
MAX_QUERY_CHARS = 4000  # likewise for SEMSEARCH_MAX_QUERY_CHARS
DEFAULT_MIN_SCORE = 0.25  # result score (0 to 1, search/scores.py) below which an answer abstains

_NO_CHAT = ("none", "off", "extractive")


@dataclass(frozen=True)
class QueryLimits:
    """The longest query and the largest k a caller may ask for (422 over HTTP, exit 2 in the CLI)."""

    max_k: int = MAX_K
    max_query_chars: int = MAX_QUERY_CHARS

    def check(self, text: str, k: int) -> None:
        if len(text) > self.max_query_chars:
            raise InvalidQuery(f"the query is {len(text)} characters long; the limit is {self.max_query_chars}")
        if not 1 <= k <= self.max_k:
            raise InvalidQuery(f"k must be between 1 and {self.max_k}, not {k}")


def default_index_dir() -> Path:
    """The per-user data folder's index (never inside the source tree)."""
    return Path(platformdirs.user_data_dir("semsearch", appauthor=False)) / "index"


def default_cache_dir() -> Path:
    """Where built model files are cached."""
    return Path(platformdirs.user_cache_dir("semsearch", appauthor=False))


def _env(name: str, default: Any = None, **constraints: Any) -> Any:
    """A field set by the variable `name` (a `default_factory` may stand for the default)."""
    if "default_factory" in constraints:
        return Field(validation_alias=AliasChoices(name), **constraints)
    return Field(default, validation_alias=AliasChoices(name), **constraints)


class Settings(BaseSettings):
    """Everything the CLI and the app need to know, with defaults. Built directly, it reads no environment."""

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, env_ignore_empty=True, extra="ignore")
    reads_environment: ClassVar[bool] = False  # only `from_env` reads the environment

    index_dir: Path = _env("SEMSEARCH_INDEX", default_factory=default_index_dir)
    cache_dir: Path = _env("SEMSEARCH_CACHE_DIR", default_factory=default_cache_dir)
    embedding_model: str = _env("SEMSEARCH_EMBEDDING_MODEL", DEFAULT_EMBEDDING_MODEL)
    openai_api_key: str | None = _env("OPENAI_API_KEY")
    openai_base_url: str | None = _env("OPENAI_BASE_URL")
    chat_model: str | None = _env("SEMSEARCH_CHAT_MODEL")  # "openai/NAME"; None: extractive answers
    chat_base_url: str | None = _env("SEMSEARCH_CHAT_BASE_URL")
    chat_context_window: int | None = _env("SEMSEARCH_CHAT_CONTEXT_WINDOW", None, ge=512)
    min_score: float = _env("SEMSEARCH_MIN_SCORE", DEFAULT_MIN_SCORE, ge=0, le=1)
    moderate: bool = _env("SEMSEARCH_MODERATE", False)
    # Served besides the default one: NAME=FOLDER pairs, comma-separated.
    named_indexes: Annotated[dict[str, Path], NoDecode] = _env("SEMSEARCH_INDEXES", default_factory=dict)
    # Where POST /indexes creates indexes; its subfolders are served.
    index_root: Path | None = _env("SEMSEARCH_INDEX_ROOT")
    # Folders POST /ingest may read (none by default), and folders the server keeps the default index in sync with.
    ingest_roots: Annotated[tuple[Path, ...], NoDecode] = _env("SEMSEARCH_INGEST_ROOTS", ())
    watch_paths: Annotated[tuple[Path, ...], NoDecode] = _env("SEMSEARCH_WATCH", ())
    api_keys: str | None = _env("SEMSEARCH_API_KEYS")  # "key1,key2:ro,key3:rw:index"
    api_keys_file: Path | None = _env("SEMSEARCH_API_KEYS_FILE")
    rate_limit: float = _env("SEMSEARCH_RATE_LIMIT", 0.0, ge=0)  # per key a minute
    public_docs: bool = _env("SEMSEARCH_PUBLIC_DOCS", False)  # /docs, /redoc, /openapi.json without a key
    # Other web origins whose pages may send writes (POST, PUT, PATCH, DELETE), comma-separated.
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = _env("SEMSEARCH_ALLOWED_ORIGINS", ())
    # The names the server answers to (the Host header), comma-separated; empty: any name. `serve` on a
    # loopback address answers to localhost only unless names are given (a guard against DNS rebinding).
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = _env("SEMSEARCH_ALLOWED_HOSTS", ())
    max_upload_mb: float = _env("SEMSEARCH_MAX_UPLOAD_MB", 50.0, gt=0)
    max_files: int = _env("SEMSEARCH_MAX_FILES", 20, ge=1)  # per upload request
    max_query_chars: int = _env("SEMSEARCH_MAX_QUERY_CHARS", MAX_QUERY_CHARS, ge=1, le=MAX_QUERY_CHARS)
    max_k: int = _env("SEMSEARCH_MAX_K", MAX_K, ge=1, le=MAX_K)
    reranker: str | None = _env("SEMSEARCH_RERANKER")  # an http(s) base URL with /rerank, or a cross-encoder folder
    rerank_model: str | None = _env("SEMSEARCH_RERANK_MODEL")
    rerank_depth: int = _env("SEMSEARCH_RERANK_DEPTH", 30, ge=1, le=MAX_K)
    # Seconds between `serve`'s checks for vector segments to merge (0: never; `semsearch optimize` still does).
    merge_interval: float = _env("SEMSEARCH_MERGE_INTERVAL", 30.0, ge=0)
    # Processes `serve` runs searches in (0: in the server process, on its threads); `serve` picks one per core.
    search_workers: int = _env("SEMSEARCH_SEARCH_WORKERS", 0, ge=0, le=64)
    # Where a new index keeps its passages and vectors: local (FAISS + SQLite in the folder) or milvus. An
    # existing index stays in the store its manifest names.
    store: Literal["local", "milvus"] | None = _env("SEMSEARCH_STORE")
    # Milvus: a Lite file (path ending .db) or a server URL (http(s)://host:19530), its token, a request timeout.
    milvus_uri: str | None = _env("SEMSEARCH_MILVUS_URI")
    milvus_token: str | None = _env("SEMSEARCH_MILVUS_TOKEN")
    milvus_timeout: float = _env("SEMSEARCH_MILVUS_TIMEOUT", 10.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings) if cls.reads_environment else (init_settings,)

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from `SEMSEARCH_*` and `OPENAI_*` variables, falling back to defaults."""
        try:
            settings: Settings = _FromEnv()
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from exc
        if "chat_model" not in settings.model_fields_set and settings.openai_api_key:
            return settings.updated(chat_model=DEFAULT_CHAT_MODEL)  # written answers come with a key
        return settings

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def query_limits(self) -> QueryLimits:
        return QueryLimits(self.max_k, self.max_query_chars)

    @property
    def openai_dir(self) -> Path:
        """Where the OpenAI-wire API keeps its files (`files/`) and, without an index root, its vector stores."""
        return self.index_dir / "openai"

    @property
    def vector_store_root(self) -> Path:
        """Where `POST /v1/vector_stores` creates indexes: the index root if there is one."""
        return self.index_root or self.openai_dir / "vector_stores"

    def with_index(self, index_dir: Path | None) -> Settings:
        """A copy pointing at another index folder (a `--index` flag)."""
        return self if index_dir is None else self.updated(index_dir=index_dir)

    def updated(self, **overrides: object) -> Settings:
        """A validated copy with the values that were given (None means not given)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return Settings(**{**self.model_dump(exclude_unset=True), **given})
        except ValidationError as exc:
            raise ConfigError(_explain(exc, flags=True)) from exc

    def milvus(self) -> MilvusOptions:
        """How to reach Milvus for a Milvus index (the URI overrides the one its manifest keeps)."""
        return MilvusOptions(uri=self.milvus_uri or "", token=self.milvus_token, timeout=self.milvus_timeout)

    def remote(self, **overrides: object) -> RemoteOptions:
        """How to reach the OpenAI-compatible server: the environment, then flags that were given."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return RemoteOptions(**{"base_url": self.openai_base_url, "api_key": self.openai_api_key, **given})  # type: ignore[arg-type]

    @field_validator("index_dir", "cache_dir", "index_root", "api_keys_file")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("chat_model", mode="before")
    @classmethod
    def _no_chat(cls, value: object) -> object:
        return None if isinstance(value, str) and value.lower() in _NO_CHAT else value

    @field_validator("named_indexes", mode="before")
    @classmethod
    def _named(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
        if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
            raise ValueError("expected NAME=FOLDER pairs separated by commas")
        return {name.strip(): Path(folder.strip()).expanduser() for name, folder in pairs}

    @field_validator("ingest_roots", "watch_paths", mode="before")
    @classmethod
    def _folders(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p)
        return tuple(Path(p).expanduser() for p in value) if isinstance(value, list | tuple) else value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        items = _listed(value)
        if items is None:
            return value
        hosts = tuple(item.lower().strip("[]").rstrip(".") for item in items)  # `name.` is the name, in DNS
        for host in hosts:
            if host != "*" and (not re.fullmatch(r"[a-z0-9._:-]+", host) or host.count(":") == 1):
                raise ValueError(f"{host!r} is not a host name: write a name or address without scheme or port")
        return hosts

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        items = _listed(value)
        if items is None:
            return value
        origins = tuple(item.lower().rstrip("/") for item in items)
        for origin in origins:
            parts = urlsplit(origin)
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
                raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port], as https://app.example.org")
        return origins


def _listed(value: object) -> list[str] | None:
    """The non-empty items, stripped, of a comma-separated string or a list; None for anything else."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return None
    return [str(item).strip() for item in items if str(item).strip()]


class _FromEnv(Settings):
    """Settings that read their variables (the one place the environment is read)."""

    reads_environment: ClassVar[bool] = True


def variable_of(field: str) -> str:
    """The environment variable that sets a field."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def _explain(exc: ValidationError, *, flags: bool = False) -> str:
    """One line per bad value, naming the variable (or the option) and what it accepts."""
    lines = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "?"
        field = where if where in Settings.model_fields else _field_of(where)
        name = f"--{field.replace('_', '-')}" if flags else variable_of(field) if field else where
        given = error.get("input")
        lines.append(f"{name}={given!r} is not valid: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def _field_of(alias: str) -> str:
    for name, info in Settings.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices) and alias in info.validation_alias.choices:
            return name
    return ""
