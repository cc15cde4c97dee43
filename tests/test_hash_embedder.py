"""The fake embedder `hash/bow-384`: deterministic, normalised, similar texts near, usable end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ingest import embedder_for_index, make_embedder
from ingest.hash_embedder import HashEmbedder

TEXTS = [
    "The cell membrane protein binds calcium.",
    "Calcium binds the protein of the cell membrane",
    "Galaxy rotation curves suggest dark matter halos.",
]


def test_vectors_are_unit_float32_and_similar_texts_are_near() -> None:
    vectors = HashEmbedder().embed_documents(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.8  # same words, other order, case and punctuation
    assert abs(similarity[0, 2]) < 0.3


def test_a_text_without_words_gets_a_zero_vector_and_queries_match_documents() -> None:
    embedder = HashEmbedder()
    vectors = embedder.embed_documents(["", "... --", "x"])
    assert not vectors[:2].any() and vectors[2].any()
    assert np.array_equal(embedder.embed_query(TEXTS[2]), embedder.embed_documents(TEXTS)[2])


def test_vectors_are_the_same_in_another_process() -> None:
    code = (
        "import json; from ingest.hash_embedder import HashEmbedder as H; "
        "print(json.dumps(H().embed_query('Zebra café 42').tolist()))"
    )
    other = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert np.array_equal(np.asarray(other, dtype=np.float32), HashEmbedder().embed_query("Zebra café 42"))


def test_tokens_are_whitespace_separated_words() -> None:
    embedder = HashEmbedder()
    assert embedder.count_tokens(["one two  three.", ""]) == [3, 0]
    assert embedder.token_spans("ab  c.d") == [(0, 2), (4, 7)]


def test_chosen_by_name_and_rebuilt_from_its_manifest(tmp_path: Path) -> None:
    embedder = make_embedder("hash/bow-384", cache_dir=tmp_path)
    assert embedder.name == "hash/bow-384" and embedder.dimension == 384
    again = embedder_for_index(embedder.describe(), embedder.name, cache_dir=tmp_path)
    assert np.array_equal(again.embed_query("a b"), embedder.embed_query("a b"))


def test_an_index_built_with_it_is_searched_with_it(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "cells.txt").write_text(TEXTS[0] + " " + TEXTS[1])
    (docs / "space.txt").write_text(TEXTS[2])
    index = str(tmp_path / "index")
    assert run("ingest", str(docs), "--index", index, "--embedding-model", "hash/bow-384").exit_code == 0
    result = run("search", "dark matter galaxy", "--index", index, "--mode", "dense", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["results"][0]["path"].endswith("space.txt")
