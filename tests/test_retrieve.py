"""Retrieval over a real index of the sample corpus: modes, fusion, explain, bad queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from indexes import open_store
from ingest import Folders, ingest, open_index
from search import InvalidQuery, SearchService, fuse, rank_documents
from search.answers.prompts import NOT_COVERED
from search.lexical import query_terms


@pytest.fixture(scope="module")
def service(sample_in_store: Path, embedder) -> Iterator[SearchService]:  # type: ignore[no-untyped-def]
    """The sample index, on the local store and on Milvus Lite: every test below runs on both."""
    index = open_store(sample_in_store)
    yield SearchService(index, embedder, owns_embedder=False)
    index.close()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("who invented the printing press", "printing-press.html"),
        ("how do plants turn light into energy", "photosynthesis.md"),
        ("TCP congestion window after packet loss", "tcp-congestion-control.rst"),
        ("how does evaporation and rain move water around the planet", "water-cycle.pdf"),
    ],
)
def test_the_right_document_comes_first(service: SearchService, mode: str, query: str, expected: str) -> None:
    hits = service.search(query, 3, mode)
    assert Path(hits[0].path).name == expected


def test_dense_finds_meaning_without_shared_words(service: SearchService) -> None:
    hits = service.search("green leaves capture sunshine", 1, "dense")
    assert Path(hits[0].path).name == "photosynthesis.md"


def test_results_carry_what_a_user_needs_to_open_the_source(service: SearchService) -> None:
    hit = service.search("water vapour condenses into clouds", 1)[0]
    assert hit.path.endswith("water-cycle.pdf") and hit.page in {1, 2, 3}
    assert hit.title and hit.text and hit.chunk_id > 0 and hit.document_id > 0
    span = hit.stored.chunk
    assert span.char_start is not None and span.char_end is not None and span.char_end > span.char_start


def test_k_limits_the_results_and_scores_descend(service: SearchService) -> None:
    for mode in ("hybrid", "dense", "lexical"):
        hits = service.search("history", 4, mode)
        assert 0 < len(hits) <= 4
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_explains_both_sides(service: SearchService) -> None:
    hit = service.search("Gutenberg movable type", 1, "hybrid")[0]
    assert hit.explain["dense_rank"] is not None and hit.explain["lexical_rank"] is not None
    assert hit.explain["fused"] > 0 and 0 < hit.score <= 1  # the raw fused value stays in explain
    rrf = service.search("Gutenberg movable type", 1, "hybrid", "rrf")[0]
    expected = 1 / (60 + rrf.explain["dense_rank"]) + 1 / (60 + rrf.explain["lexical_rank"])
    assert rrf.explain["fused"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("query", ['"unbalanced', "AND OR NOT", "near(a b)", "col:umn * ^ -x", "(((", "C++ && || !"])
def test_fts5_syntax_in_queries_never_errors(service: SearchService, query: str) -> None:
    for mode in ("lexical", "hybrid"):
        service.search(query, 5, mode)


def test_bad_queries_say_what_to_fix(service: SearchService) -> None:
    with pytest.raises(InvalidQuery, match="empty"):
        service.search("   ", 5)
    with pytest.raises(InvalidQuery, match="k must be between 1 and 100"):
        service.search("x", 0)
    with pytest.raises(InvalidQuery, match="k must be"):
        service.search("x", 101)
    with pytest.raises(InvalidQuery, match="mode"):
        service.search("x", 5, "fuzzy")


def test_rrf_fusion() -> None:
    fused = fuse([(1, 0.9), (2, 0.8)], [(2, 7.0), (3, 5.0)], "rrf")
    assert [cid for cid, _, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_zscore_fusion_weighs_standardised_scores() -> None:
    # dense z: 1 -> +1, 2 -> -1 (floor -1); lexical z: 2 -> +1, 3 -> -1 (floor -1).
    fused = dict((cid, score) for cid, score, _ in fuse([(1, 0.9), (2, 0.8)], [(2, 7.0), (3, 5.0)], "zscore"))
    assert fused[2] == pytest.approx(0.55 * -1 + 0.45 * 1)
    assert fused[1] == pytest.approx(0.55 * 1 + 0.45 * -1)
    assert fused[3] == pytest.approx(0.55 * -1 + 0.45 * -1)
    only_dense = fuse([(1, 0.9), (2, 0.8)], [], "zscore")
    assert [cid for cid, _, _ in only_dense] == [1, 2] and only_dense[0][1] == pytest.approx(1.0)


def test_unknown_fusion_is_refused(service: SearchService) -> None:
    with pytest.raises(InvalidQuery, match="fusion"):
        service.search("x", 5, "hybrid", "max")


def test_documents_rank_by_their_best_passage(service: SearchService) -> None:
    ranked = rank_documents(service.index, service.embedder, "printing press", "hybrid", depth=5)
    paths = [p for p, _ in ranked]
    assert len(paths) == len(set(paths)) <= 5
    assert paths[0].endswith("printing-press.html")


ON_TOPIC = (
    "who invented the printing press",
    "TCP congestion window after packet loss",
    "green leaves capture sunshine",
)
OFF_TOPIC = ("what is the capital of France?", "What is the population of Ulaanbaatar in 2019?")


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_scores_are_between_0_and_1_and_never_rise(service: SearchService, mode: str) -> None:
    for query in (*ON_TOPIC, *OFF_TOPIC, "history"):
        scores = [h.score for h in service.search(query, 10, mode)]
        assert all(0 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_scores_compare_across_queries_where_fused_values_do_not(service: SearchService, mode: str) -> None:
    on = [service.search(q, 3, mode) for q in ON_TOPIC]
    off = [h for q in OFF_TOPIC for h in service.search(q, 3, mode)]
    assert min(hits[0].score for hits in on) > 0.35 > 0.25 > max((h.score for h in off), default=0.0)
    if mode == "hybrid":  # the raw fused values say an off-topic passage beats on-topic ones
        assert max(float(h.explain["fused"] or 0) for h in off) > min(float(h.explain["fused"] or 0) for h in on[0])


def test_lexical_scores_stay_under_the_ceiling_they_are_shared_by(service: SearchService) -> None:
    for query in (*ON_TOPIC, *OFF_TOPIC, "history", "printing printing press"):
        with service.index.read() as reader:
            ceiling = reader.lexical_ceiling(query_terms(query))
            scores = [score for _, score in reader.lexical(query_terms(query), 50)]
        assert all(0 < score < ceiling for score in scores)


def test_min_score_keeps_the_passages_that_reach_it(service: SearchService) -> None:
    every = service.search("who invented the printing press", 10)
    kept = service.search("who invented the printing press", 10, min_score=0.5)
    assert 0 < len(kept) < len(every) and kept == [h for h in every if h.score >= 0.5]


def test_extractive_answer_abstains_when_nothing_is_relevant(service: SearchService) -> None:
    for mode in ("hybrid", "dense", "lexical"):
        answer = service.ask("what is the capital of France?", 8, mode)
        assert answer.abstained and answer.answer == NOT_COVERED and answer.citations == ()
        assert "floor of 0.25" in answer.notes[0]
        answered = service.ask("Who invented the printing press with movable type?", 8, mode)
        assert not answered.abstained and answered.answer.split(" [")[0].startswith("Johannes Gutenberg")


def test_extractive_answer_quotes_and_cites(service: SearchService) -> None:
    answer = service.ask("Who invented the printing press with movable type?", 3)
    assert answer.mode == "extractive"
    assert "Gutenberg" in answer.answer
    assert answer.citations and all(f"[{c.number}]" in answer.answer for c in answer.citations)
    for c in answer.citations:
        assert c.quote in " ".join(answer.results[c.number - 1].text.split())


def test_an_extractive_answer_quotes_nothing_off_the_question(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Three one-topic files: the answer about the press quotes the press, not the best of the rest."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "press.txt").write_text("The printing press was invented by Johannes Gutenberg around 1440 in Mainz.\n")
    (docs / "tea.md").write_text("# Tea\n\nBlack tea is fully oxidized. Green tea is not oxidized at all.\n")
    (docs / "cells.txt").write_text("Mitochondria are the powerhouses of cells. They make ATP through respiration.\n")
    index, _ = open_index(tmp_path / "ix", embedder, None)
    ingest(index, embedder, Folders([docs]))
    answer = SearchService(index, embedder).ask("Who invented the printing press?", 8)
    assert [Path(c.path).name for c in answer.citations] == ["press.txt"]
    assert answer.answer == "The printing press was invented by Johannes Gutenberg around 1440 in Mainz. [1]"
