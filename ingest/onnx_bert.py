"""Build an ONNX graph of a BERT sentence encoder straight from its safetensors weights.

No torch and no transformers: the safetensors file is parsed with numpy and the graph is
written with `onnx.helper`. The graph takes `input_ids`, `attention_mask` and
`token_type_ids` (int64, shape [batch, sequence]) and returns `embeddings` [batch, hidden]:
mean-pooled over the attention mask and L2-normalised, as sentence-transformers does.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ingest.errors import ModelNotAvailable

OPSET = 17  # the first opset with a native LayerNormalization
BUILDER_VERSION = 1  # bump whenever the graph changes, so cached files are rebuilt
_MASK_BIAS = -10000.0  # added to the attention scores of padding tokens (as BERT does)
_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


@dataclass(frozen=True)
class BertConfig:
    """The few numbers of a BERT `config.json` that shape the graph."""

    hidden: int
    heads: int
    layers: int
    eps: float

    @classmethod
    def from_json(cls, text: bytes | str) -> BertConfig:
        """Read the text of a Hugging Face BERT `config.json`."""
        try:
            raw = json.loads(text)
            return cls(
                hidden=int(raw["hidden_size"]),
                heads=int(raw["num_attention_heads"]),
                layers=int(raw["num_hidden_layers"]),
                eps=float(raw.get("layer_norm_eps", 1e-12)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelNotAvailable(f"config.json is not a BERT config: {exc}") from exc


def parse_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file: 8-byte header length, JSON header, raw data.

    The arrays are read-only views into `data`.
    """
    try:
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_len])
        header.pop("__metadata__", None)
        body = memoryview(data)[8 + header_len :]
        return {name: _tensor(body, meta) for name, meta in header.items()}
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise ModelNotAvailable(f"the weights are not a valid safetensors file: {exc}") from exc


def _tensor(body: memoryview, meta: dict[str, Any]) -> np.ndarray:
    start, end = meta["data_offsets"]
    dtype = np.dtype(_DTYPES[meta["dtype"]])
    shape = tuple(int(n) for n in meta["shape"])
    if not 0 <= start <= end <= len(body) or end - start != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"tensor data out of bounds or of the wrong size: {meta}")
    return np.frombuffer(body[start:end], dtype=dtype).reshape(shape)


class _Graph:
    """Collects nodes and initializers; every node gets a fresh output name."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, key: str, transpose: bool = False) -> str:
        """A float32 initializer from the checkpoint (Linear weights transposed to [in, out])."""
        try:
            value = self.weights[key]
        except KeyError:
            raise ModelNotAvailable(f"the checkpoint has no tensor {key!r}") from None
        value = np.ascontiguousarray(value.T if transpose else value, dtype=np.float32)
        return self.const(key, value)

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        output = f"{op_type.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], output, **attrs))
        return output


def build_bert(weights: dict[str, np.ndarray], config: BertConfig) -> onnx.ModelProto:
    """The sentence-embedding graph for these weights, checked by the ONNX checker."""
    g = _Graph(weights)
    _constants(g, config)
    hidden = _embeddings(g, config)
    bias = _attention_bias(g)
    for layer in range(config.layers):
        hidden = _encoder_layer(g, config, f"encoder.layer.{layer}.", hidden, bias)
    _pool_and_normalise(g, hidden)
    graph = helper.make_graph(g.nodes, "bert_sentence_encoder", _inputs(), _outputs(config), g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.producer_name = "semsearch.ingest.onnx_bert"
    onnx.checker.check_model(model)
    return model


def _inputs() -> list[onnx.ValueInfoProto]:
    names = ("input_ids", "attention_mask", "token_type_ids")
    return [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]


def _outputs(config: BertConfig) -> list[onnx.ValueInfoProto]:
    return [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", config.hidden])]


def _constants(g: _Graph, config: BertConfig) -> None:
    head_dim = config.hidden // config.heads
    g.const("one", np.array(1.0, np.float32))
    g.const("mask_bias", np.array(_MASK_BIAS, np.float32))
    g.const("sqrt_2", np.array(math.sqrt(2.0), np.float32))
    g.const("half", np.array(0.5, np.float32))
    g.const("min_count", np.array(1e-9, np.float32))  # sentence-transformers' clamps
    g.const("min_norm", np.array(1e-12, np.float32))
    g.const("zero_i64", np.array(0, np.int64))
    g.const("one_i64", np.array(1, np.int64))
    g.const("axis_1", np.array([1], np.int64))
    g.const("axis_2", np.array([2], np.int64))
    g.const("axes_1_2", np.array([1, 2], np.int64))
    g.const("split_heads", np.array([0, 0, config.heads, head_dim], np.int64))
    g.const("merge_heads", np.array([0, 0, config.hidden], np.int64))
    g.const("head_scale", np.array(1.0 / math.sqrt(head_dim), np.float32))


def _embeddings(g: _Graph, config: BertConfig) -> str:
    """Word + position + token type embeddings, then LayerNorm."""
    words = g.op("Gather", g.weight("embeddings.word_embeddings.weight"), "input_ids")
    types = g.op("Gather", g.weight("embeddings.token_type_embeddings.weight"), "token_type_ids")
    length = g.op("Gather", g.op("Shape", "input_ids"), "one_i64")
    positions = g.op("Range", "zero_i64", length, "one_i64")
    places = g.op("Gather", g.weight("embeddings.position_embeddings.weight"), positions)
    summed = g.op("Add", g.op("Add", words, types), places)
    return _layer_norm(g, config, "embeddings.LayerNorm", summed)


def _layer_norm(g: _Graph, config: BertConfig, prefix: str, x: str) -> str:
    scale, bias = g.weight(f"{prefix}.weight"), g.weight(f"{prefix}.bias")
    return g.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=config.eps)


def _linear(g: _Graph, prefix: str, x: str) -> str:
    product = g.op("MatMul", x, g.weight(f"{prefix}.weight", transpose=True))
    return g.op("Add", product, g.weight(f"{prefix}.bias"))


def _attention_bias(g: _Graph) -> str:
    """[batch, 1, 1, sequence]: 0 for real tokens, a large negative number for padding."""
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    padding = g.op("Sub", "one", g.op("Unsqueeze", mask, "axes_1_2"))
    return g.op("Mul", padding, "mask_bias")


def _encoder_layer(g: _Graph, config: BertConfig, prefix: str, x: str, bias: str) -> str:
    """Self-attention and a GELU feed-forward block, each followed by Add + LayerNorm."""
    attended = _linear(g, f"{prefix}attention.output.dense", _self_attention(g, prefix, x, bias))
    x = _layer_norm(g, config, f"{prefix}attention.output.LayerNorm", g.op("Add", attended, x))
    inner = _gelu(g, _linear(g, f"{prefix}intermediate.dense", x))
    out = _linear(g, f"{prefix}output.dense", inner)
    return _layer_norm(g, config, f"{prefix}output.LayerNorm", g.op("Add", out, x))


def _self_attention(g: _Graph, prefix: str, x: str, bias: str) -> str:
    def heads(name: str, perm: list[int]) -> str:
        projected = _linear(g, f"{prefix}attention.self.{name}", x)
        return g.op("Transpose", g.op("Reshape", projected, "split_heads"), perm=perm)

    query, key = heads("query", [0, 2, 1, 3]), heads("key", [0, 2, 3, 1])
    value = heads("value", [0, 2, 1, 3])
    scores = g.op("Mul", g.op("MatMul", query, key), "head_scale")
    weights = g.op("Softmax", g.op("Add", scores, bias), axis=-1)
    context = g.op("Transpose", g.op("MatMul", weights, value), perm=[0, 2, 1, 3])
    return g.op("Reshape", context, "merge_heads")


def _gelu(g: _Graph, x: str) -> str:
    """The exact GELU, 0.5 * x * (1 + erf(x / sqrt 2)), which BERT uses."""
    # In this form (Div, not Mul by 1/sqrt 2) ONNX Runtime fuses it with the bias into BiasGelu.
    erf = g.op("Erf", g.op("Div", x, "sqrt_2"))
    return g.op("Mul", g.op("Mul", x, "half"), g.op("Add", erf, "one"))


def _pool_and_normalise(g: _Graph, hidden: str) -> None:
    """Mean over the real tokens, then divide by the L2 norm."""
    mask = g.op("Unsqueeze", g.op("Cast", "attention_mask", to=TensorProto.FLOAT), "axis_2")
    summed = g.op("ReduceSum", g.op("Mul", hidden, mask), "axis_1", keepdims=0)
    count = g.op("Max", g.op("ReduceSum", mask, "axis_1", keepdims=0), "min_count")
    mean = g.op("Div", summed, count)
    norm = g.op("Max", g.op("ReduceL2", mean, axes=[-1], keepdims=1), "min_norm")
    g.nodes.append(helper.make_node("Div", [mean, norm], ["embeddings"], "embeddings"))
