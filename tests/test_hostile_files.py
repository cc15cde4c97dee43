"""Folders a careful user or an attacker could hand to `semsearch ingest`: every run must finish.

Each hostile file is made here, under tmp_path, and is either ingested or named in
`skipped` with a reason; running again ingests and embeds nothing.
"""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from search.cli.main import cli


@pytest.fixture
def run(model_cache: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def ingest_json(run, folder: Path, index: Path) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result = run("ingest", str(folder), "--index", str(index), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def write_raw(folder: Path, name: bytes, data: bytes) -> bytes:
    """Create a file whose name is raw bytes (not necessarily UTF-8); return its full byte path."""
    path = os.fsencode(folder) + b"/" + name
    with open(path, "wb") as file:
        file.write(data)
    return path


# --- file names that are not UTF-8 (issue 10, item 1) -----------------------------


def test_a_file_name_that_is_not_utf8_is_ingested_and_shown_escaped(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, index = tmp_path / "d", tmp_path / "ix"
    folder.mkdir()
    raw = write_raw(folder, b"ok_\xff.txt", b"rain falls on the plain")
    (folder / "fine.txt").write_text("hello world")

    summary = ingest_json(run, folder, index)
    assert (summary["ingested"], summary["skipped"]) == (2, [])

    found = run("search", "rain on the plain", "--index", str(index), "--json")
    path = json.loads(found.output)["results"][0]["path"]
    assert path == f"{folder}/ok_\\xff.txt"  # shown with the odd byte escaped...
    assert codecs.escape_decode(path.encode("utf-8"))[0] == raw  # ...and nothing lost: it names the file again

    again = ingest_json(run, folder, index)
    assert (again["ingested"], again["unchanged"], again["embedded"]) == (0, 2, 0)
    os.remove(raw)
    assert ingest_json(run, folder, index)["removed"] == 1


def test_plain_output_prints_a_non_utf8_name(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "d"
    folder.mkdir()
    write_raw(folder, b"caf\xe9.txt", b"")  # empty, so it is listed among the skipped files
    result = run("ingest", str(folder), "--index", str(tmp_path / "ix"))
    assert result.exit_code == 0, result.output
    assert "caf\\xe9.txt: empty file" in result.output


# --- the paths named on the command line (item 8) --------------------------------


def test_a_missing_path_exits_2_and_creates_no_index(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("ingest", str(tmp_path / "no" / "such" / "path"), "--index", str(tmp_path / "ix"))
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not (tmp_path / "ix").exists()


def test_an_empty_folder_says_so(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    result = run("ingest", str(tmp_path / "empty"), "--index", str(tmp_path / "ix"))
    assert result.exit_code == 0, result.output
    assert f"No documents found in {tmp_path / 'empty'}" in result.output
    assert ingest_json(run, tmp_path / "empty", tmp_path / "ix")["files_seen"] == 0
