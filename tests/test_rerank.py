"""The optional reranking stage: a /rerank server (the simulator) and an ONNX cross-encoder folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from ingest import open_index
from ingest.local_model import model_files
from search import SearchService
from search.cli.main import cli
from search.errors import ConfigError
from search.rerank import CrossEncoderReranker, HttpReranker, make_reranker
from tests.support.openai_sim import create_simulator

from .conftest import ServerThread


@pytest.fixture(scope="module")
def index_dir(sample_index: Path) -> Path:
    return sample_index


def keyword_cross_encoder(folder: Path, keyword: str) -> Path:
    """A real ONNX model with a cross-encoder's inputs and output: the logit counts `keyword` in the passage."""
    tokenizer_file = model_files() / "tokenizer.json"
    shutil.copy(tokenizer_file, folder / "tokenizer.json")
    vocab = Tokenizer.from_file(str(tokenizer_file)).get_vocab()
    weights = np.zeros(len(vocab), dtype=np.float32)
    weights[vocab[keyword]] = 1.0
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    nodes = [
        helper.make_node("Gather", ["weights", "input_ids"], ["per_token"]),
        helper.make_node("Mul", ["attention_mask", "token_type_ids"], ["passage_mask"]),
        helper.make_node("Cast", ["passage_mask"], ["passage_maskf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["per_token", "passage_maskf"], ["scored"]),
        helper.make_node("ReduceSum", ["scored", "axes"], ["logits"], keepdims=1),
    ]
    initializers = [
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
    ]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])
    graph = helper.make_graph(nodes, "keyword-cross-encoder", inputs, [output], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "model.onnx"))
    return folder


def test_cross_encoder_folder_reorders_by_its_scores(index_dir: Path, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reranker = CrossEncoderReranker(keyword_cross_encoder(tmp_path, "mainz"))
    assert reranker.rerank("where", ["Printers in Mainz and Mainz", "no keyword here", "Mainz once"]) == [2.0, 0.0, 1.0]
    service = SearchService(open_index(index_dir, embedder, None)[0], embedder, reranker=reranker, rerank_depth=40)
    hits = service.search("history of books and printing", 3)
    assert "mainz" in hits[0].text.lower()
    assert hits[0].explain["rerank_score"] >= hits[1].explain["rerank_score"] >= hits[2].explain["rerank_score"]
    assert all("fused_rank" in h.explain for h in hits)
    scores = [h.score for h in hits]  # the reranker's logits stay in explain; scores run from 0 to 1, down the list
    assert all(0 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)
    assert all(h.score <= max(h.explain["cosine"], h.explain["lexical_strength"]) for h in hits)


def test_http_rerank_endpoint(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    with ServerThread(create_simulator()) as sim:
        reranker = HttpReranker(f"{sim.url}/v1", "rerank-test")
        service = SearchService(open_index(index_dir, embedder, None)[0], embedder, reranker=reranker)
        hits = service.search("movable metal type", 5, "dense")
        scores = [h.explain["rerank_score"] for h in hits]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0
        assert sim.app.state.sim.requests_log[-1]["n_inputs"] == 30, "the reranker saw the deeper candidate list"
        service.close()


def test_reranker_from_the_cli_and_bad_specs(
    index_dir: Path, model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_CACHE_DIR", str(model_cache))
    folder = keyword_cross_encoder(tmp_path, "chess")
    result = CliRunner().invoke(
        cli,
        ["search", "rules of a board game", "--index", str(index_dir), "--reranker", str(folder), "--json", "-k", "2"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["results"][0]["path"].endswith("chess-rules.html")
    with pytest.raises(ConfigError, match="neither"):
        make_reranker(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="model.onnx"):
        make_reranker(str(tmp_path / "empty"))
    assert make_reranker(None) is None
