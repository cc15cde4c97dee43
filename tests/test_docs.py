"""The README stays true: its test command is what CI runs, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from search.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line)
    assert f"```sh\n{command}\n```" in README


def test_every_command_and_option_in_the_readme_exists() -> None:
    runner = CliRunner()
    for line in re.findall(r"^semsearch .*$", README, flags=re.M):
        words = line.split("#")[0].split()
        command = words[1]
        help_text = runner.invoke(cli, [command, "--help"]).output
        assert f"semsearch {command}" in help_text, line
        for option in (w for w in words if w.startswith("--")):
            assert option.split("=")[0] in help_text, f"{option} in: {line}"


def test_the_quick_start_sample_folder_is_shipped() -> None:
    assert "semsearch ingest tests/data/sample" in README
    assert len(list((ROOT / "tests" / "data" / "sample").iterdir())) >= 8
