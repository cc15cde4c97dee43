"""Settings: the one place that reads the environment (`Settings.from_env`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

from ingest import DEFAULT_EMBEDDING_MODEL, RemoteOptions


def default_index_dir() -> Path:
    """The per-user data folder's index (never inside the source tree)."""
    return Path(platformdirs.user_data_dir("semsearch", appauthor=False)) / "index"


def default_cache_dir() -> Path:
    """Where built model files are cached."""
    return Path(platformdirs.user_cache_dir("semsearch", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything the CLI and the app need to know, with defaults."""

    index_dir: Path
    cache_dir: Path
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    openai_api_key: str | None = None
    openai_base_url: str | None = None

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
        )

    def with_index(self, index_dir: Path | None) -> Settings:
        """A copy pointing at another index folder (a `--index` flag)."""
        return self if index_dir is None else replace(self, index_dir=index_dir.expanduser())

    def remote(self, **overrides: object) -> RemoteOptions:
        """How to reach the OpenAI-compatible server: the environment, then flags that were given."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return RemoteOptions(**{"base_url": self.openai_base_url, "api_key": self.openai_api_key, **given})  # type: ignore[arg-type]
