"""An optional reranking stage: a model rescoring the fused candidates against the query.

Off by default (no reranker's weights ship in a package we can install offline).
Two kinds plug in: a cross-encoder exported to ONNX in a folder the user points at
(`model.onnx` + `tokenizer.json`), and any server with a Cohere/Jina-style rerank
endpoint (`POST {base}/rerank`: vLLM, TEI, Jina, Cohere-compatible gateways).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ingest import OpenAIClient, RateLimiter
from ingest.openai_client import MalformedResponse

from .errors import ConfigError
from .retrieve import Hit, with_scores


class Reranker(Protocol):
    """Scores passages against a query; higher is more relevant."""

    name: str

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]: ...

    def close(self) -> None: ...


class HttpReranker:
    """A rerank endpoint: `{"model", "query", "documents"}` -> `{"results": [{"index", "relevance_score"}]}`."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, *, client: OpenAIClient | None = None
    ) -> None:
        self.name = f"http/{model}"
        self.model = model
        self.client = client or OpenAIClient(base_url, api_key, limiter=RateLimiter(), max_retries=3, timeout=30.0)

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []

        def parse(reply: dict[str, Any]) -> list[float]:
            scores = [float("nan")] * len(texts)
            for item in reply["results"]:
                scores[int(item["index"])] = float(item.get("relevance_score", item.get("score")))
            if any(np.isnan(scores)):
                raise MalformedResponse("the rerank reply does not score every document")
            return scores

        body = {"model": self.model, "query": query, "documents": list(texts), "top_n": len(texts)}
        result: list[float] = self.client.post("/rerank", body, parse=parse)
        return result

    def close(self) -> None:
        self.client.close()


class CrossEncoderReranker:
    """A cross-encoder in ONNX form from a local folder: `model.onnx` and `tokenizer.json`."""

    def __init__(self, folder: Path, *, max_tokens: int = 512, batch_size: int = 16) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = f"onnx/{folder.name}"
        model, tokenizer = folder / "model.onnx", folder / "tokenizer.json"
        if not model.is_file() or not tokenizer.is_file():
            raise ConfigError(f"a cross-encoder folder needs model.onnx and tokenizer.json; {folder} lacks one")
        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer))
            options = ort.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # tokenizers and onnxruntime raise bare Exceptions
            raise ConfigError(f"cannot load the cross-encoder in {folder}: {exc}") from exc
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.batch_size = batch_size

    def rerank(self, query: str, texts: Sequence[str]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            pairs = [(query, text) for text in texts[start : start + self.batch_size]]
            scores.extend(self._score(pairs))
        return scores

    def _score(self, pairs: list[tuple[str, str]]) -> list[float]:
        encodings = self._tokenizer.encode_batch(pairs)
        width = max(len(e.ids) for e in encodings)
        feed = {
            name: np.zeros((len(encodings), width), dtype=np.int64)
            for name in ("input_ids", "attention_mask", "token_type_ids")
        }
        for row, e in enumerate(encodings):
            feed["input_ids"][row, : len(e.ids)] = e.ids
            feed["attention_mask"][row, : len(e.ids)] = 1
            feed["token_type_ids"][row, : len(e.ids)] = e.type_ids
        logits = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        logits = np.asarray(logits, dtype=np.float32).reshape(len(pairs), -1)
        return [float(row[-1]) for row in logits]  # one logit, or the "relevant" class of two

    def close(self) -> None:
        return None


def make_reranker(spec: str | None, *, model: str | None = None, api_key: str | None = None) -> Reranker | None:
    """A reranker from `SEMSEARCH_RERANKER`: an http(s) base URL, or a cross-encoder folder."""
    if not spec:
        return None
    if spec.startswith(("http://", "https://")):
        return HttpReranker(spec, model or "rerank", api_key)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"reranker {spec!r} is neither an http(s) URL nor a folder with model.onnx and tokenizer.json"
        )
    return CrossEncoderReranker(folder)


def rerank_hits(reranker: Reranker, query: str, hits: list[Hit], k: int) -> list[Hit]:
    """The hits reordered by the reranker's scores (kept in `explain`), cut to k and scored in that order."""
    scores = reranker.rerank(query, [h.text for h in hits])
    rescored = [
        (s, replace(h, explain={**h.explain, "fused_rank": i, "rerank_score": s}))
        for i, (h, s) in enumerate(zip(hits, scores), 1)
    ]
    rescored.sort(key=lambda pair: -pair[0])
    return with_scores([h for _, h in rescored[:k]])
