"""Settings: one validated object from the environment, applied the same way by the CLI and the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from search import Settings
from search.cli import cli
from search.errors import ConfigError
from search.http import create_app

from .conftest import DATA, ServerThread


def test_variables_parse_into_typed_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEMSEARCH_INDEX", str(tmp_path / "ix"))
    monkeypatch.setenv("SEMSEARCH_MAX_K", "7")
    monkeypatch.setenv("SEMSEARCH_MIN_SCORE", "0.4")
    monkeypatch.setenv("SEMSEARCH_MODERATE", "yes")
    monkeypatch.setenv("SEMSEARCH_INDEXES", f"a={tmp_path / 'a'}, b = {tmp_path / 'b'}")
    monkeypatch.setenv("SEMSEARCH_INGEST_ROOTS", os.pathsep.join([str(tmp_path / "r1"), str(tmp_path / "r2")]))
    monkeypatch.setenv("SEMSEARCH_MAX_UPLOAD_MB", "0.5")
    monkeypatch.setenv("SEMSEARCH_RERANK_DEPTH", "")  # empty means unset
    settings = Settings.from_env()
    assert settings.index_dir == tmp_path / "ix" and settings.max_k == 7 and settings.min_score == 0.4
    assert settings.moderate is True and settings.rerank_depth == 30
    assert settings.named_indexes == {"a": tmp_path / "a", "b": tmp_path / "b"}
    assert settings.ingest_roots == (tmp_path / "r1", tmp_path / "r2")
    assert settings.max_upload_bytes == 2**19
    assert settings.query_limits.max_k == 7


def test_a_key_brings_written_answers_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().chat_model is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert Settings.from_env().chat_model == "openai/gpt-4o-mini"
    monkeypatch.setenv("SEMSEARCH_CHAT_MODEL", "none")
    assert Settings.from_env().chat_model is None
    assert Settings(index_dir=Path("x"), openai_api_key="sk-test").chat_model is None  # built directly: as given


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SEMSEARCH_MIN_SCORE", "abc", "valid number"),
        ("SEMSEARCH_MAX_K", "500", "less than or equal to 100"),
        ("SEMSEARCH_MAX_K", "0", "greater than or equal to 1"),
        ("SEMSEARCH_MODERATE", "maybe", "valid boolean"),
        ("SEMSEARCH_INDEXES", "just-a-folder", "NAME=FOLDER"),
        ("SEMSEARCH_CHAT_CONTEXT_WINDOW", "12", "greater than or equal to 512"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}={value!r} is not valid: .*{says}"):
        Settings.from_env()


def test_the_cli_reports_a_bad_variable_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["stats", "--index", str(tmp_path)], env={"SEMSEARCH_MIN_SCORE": "abc"})
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: SEMSEARCH_MIN_SCORE='abc' is not valid: "
        "Input should be a valid number, unable to parse string as a number"
    ]


def test_max_k_applies_to_the_cli(sample_index: Path, model_cache: Path) -> None:
    env = {"SEMSEARCH_MAX_K": "2", "SEMSEARCH_CACHE_DIR": str(model_cache)}
    runner = CliRunner(env=env)
    refused = runner.invoke(cli, ["search", "chess", "-k", "4", "--index", str(sample_index)])
    assert refused.exit_code == 2 and "Invalid value for '-k': 4 is more than the limit of 2" in refused.output
    for command in ("search", "ask"):
        allowed = runner.invoke(cli, [command, "chess", "-k", "2", "--index", str(sample_index), "--json"])
        assert allowed.exit_code == 0, allowed.output


def test_max_k_applies_over_http(sample_index: Path, model_cache: Path) -> None:
    settings = Settings(index_dir=sample_index, cache_dir=model_cache, max_k=2)
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        refused = client.post("/ask", json={"question": "chess", "k": 3})
        assert refused.status_code == 422 and "k must be between 1 and 2, not 3" in refused.json()["error"]["message"]
        assert client.post("/search", json={"query": "chess", "k": 2}).status_code == 200


def test_another_embedding_model_for_an_existing_index_is_refused(sample_index: Path, model_cache: Path) -> None:
    runner = CliRunner(env={"SEMSEARCH_CACHE_DIR": str(model_cache)})
    args = ["ingest", str(DATA / "sample"), "--index", str(sample_index), "--dry-run"]
    result = runner.invoke(cli, [*args, "--embedding-model", "openai/text-embedding-3-small"])
    assert result.exit_code == 2
    assert "was built with local/all-MiniLM-L6-v2, not openai/text-embedding-3-small" in result.output
    assert "--index NEW_DIR" in result.output
    same = runner.invoke(cli, [*args, "--embedding-model", "local/all-MiniLM-L6-v2"])
    assert same.exit_code == 0, same.output


def test_help_loads_no_web_framework_index_engine_or_model() -> None:
    probe = (
        "import sys\n"
        "from search.cli import main\n"
        "sys.argv = ['semsearch', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('fastapi', 'starlette', 'uvicorn', 'faiss', 'onnxruntime', 'pymilvus')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "Semantic search and question answering" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
