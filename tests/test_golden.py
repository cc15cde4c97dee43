"""A user's own golden set, and result snippets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexes import Chunk, StoredChunk
from search.cli.main import cli
from search.errors import DatasetError
from search.evaluation.golden import GoldenQuery, load_golden, run_golden
from search.retrieve import Hit

from .conftest import DATA


def hit(path: str, page: int | None = None) -> Hit:
    return Hit(StoredChunk(1, 1, path, "", Chunk(0, "", 0, page=page)), score=1.0)


def test_metrics_on_a_known_ranking(tmp_path: Path) -> None:
    golden = tmp_path / "g.jsonl"
    golden.write_text(json.dumps({"query": "q", "expected": ["docs/b.md", "c.pdf#2"]}) + "\n")
    [query] = load_golden(golden)
    results = [hit("/x/docs/a.md"), hit("/x/docs/b.md"), hit("/x/docs/b.md"), hit("/x/c.pdf", 1), hit("/x/c.pdf", 2)]
    report = run_golden([query], lambda _: results)
    # Pages are expected, so results count per (path, page): a.md, b.md, c.pdf#1, c.pdf#2 -> relevant at 2 and 4.
    assert report["hit@1"] == 0 and report["hit@3"] == 1 and report["mrr@10"] == 0.5
    ideal = 1 + 1 / 1.584962500721156
    assert report["ndcg@10"] == pytest.approx((1 / 1.584962500721156 + 1 / 2.321928094887362) / ideal, abs=1e-4)
    assert report["recall@10"] == 1.0


def test_a_path_must_match_whole_components() -> None:
    query = GoldenQuery("q", (load_expected("b.md"),))
    assert run_golden([query], lambda _: [hit("/x/ab.md")])["hit@10"] == 0
    assert run_golden([query], lambda _: [hit("/x/b.md")])["hit@10"] == 1


def load_expected(text: str):  # type: ignore[no-untyped-def]
    from search.evaluation.golden import _expected

    return _expected(text, "test")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ('{"expected": ["a"]}', "query"),
        ('{"query": "q", "expected": []}', "expected"),
        ('{"query": "q", "expected": ["a.pdf#x"]}', "page number"),
    ],
)
def test_bad_golden_lines_say_where_and_what(tmp_path: Path, line: str, message: str) -> None:
    golden = tmp_path / "g.jsonl"
    golden.write_text('{"query": "ok", "expected": ["a"]}\n' + line + "\n")
    with pytest.raises(DatasetError, match=f"g.jsonl:2: .*{message}"):
        load_golden(golden)


def test_eval_command_on_a_golden_set(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(DATA / "sample"), "--index", str(tmp_path / "ix")]).exit_code == 0
    golden = tmp_path / "golden.jsonl"
    rows = [
        {"query": "who invented the printing press", "expected": ["sample/printing-press.html"]},
        {"query": "how does water evaporate and fall as rain", "expected": ["water-cycle.pdf#1", "water-cycle.pdf#2"]},
        {"query": "how does the bishop move", "expected": "chess-rules.html"},
    ]
    golden.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for mode in ("hybrid", "lexical", "dense"):
        result = runner.invoke(cli, ["eval", str(golden), "--index", str(tmp_path / "ix"), "--mode", mode, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["queries"] == 3 and report["mode"] == mode and report["hit@10"] == 1.0
        assert 0.5 <= report["ndcg@10"] <= 1.0
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{oops\n")
    result = runner.invoke(cli, ["eval", str(broken), "--index", str(tmp_path / "ix")])
    assert result.exit_code == 2 and "broken.jsonl:1" in result.output


def test_snippets_mark_the_query_words(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
    runner = CliRunner()
    runner.invoke(cli, ["ingest", str(DATA / "sample"), "--index", str(tmp_path / "ix")])
    data = json.loads(
        runner.invoke(cli, ["search", "Gutenberg movable type", "--index", str(tmp_path / "ix"), "--json"]).output
    )
    first = data["results"][0]
    assert "<mark>Gutenberg</mark>" in first["snippet"] and len(first["snippet"]) < len(first["text"]) + 40
    meaning_only = json.loads(
        runner.invoke(
            cli, ["search", "zzzq leaves", "--index", str(tmp_path / "ix"), "--mode", "dense", "--json"]
        ).output
    )
    assert all(r["snippet"] for r in meaning_only["results"])
