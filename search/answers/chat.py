"""Answers written by a chat model over the retrieved passages, cited and checked.

The best passages are packed, numbered, into the model's context window with room
left for the reply; the reply's [n] markers are resolved to passages (markers to
passages not provided are dropped and reported). When retrieval finds nothing close
enough (`abstain.py`) the answer says the documents do not cover the question, without a call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest import OpenAIClient, UpstreamRejected
from ingest.openai_client import MalformedResponse
from ingest.tokenizer import TiktokenCounter
from search.errors import AnswerRefused
from search.retrieve import Hit
from search.settings import DEFAULT_MIN_SCORE

from .abstain import abstention
from .chat_models import ChatModelInfo, chat_model_info, chat_price
from .citations import resolve
from .extractive import Answer
from .prompts import NOT_COVERED, messages, passage_block

_MESSAGE_OVERHEAD = 16  # tokens the chat format adds around the messages


@dataclass(frozen=True)
class ChatOptions:
    """How answers are written: model, reply room, context limits, abstention, moderation."""

    model: str = "gpt-4o-mini"
    max_tokens: int = 600
    temperature: float = 0.0
    context_window: int | None = None
    max_passages: int = 8
    max_context_tokens: int = 12_000
    min_score: float = DEFAULT_MIN_SCORE
    moderate: bool = False


@dataclass
class ChatUsage:
    """Tokens and dollars spent on answers since start (summed for /stats)."""

    answers: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, usage: dict[str, Any]) -> None:
        with self._lock:
            self.answers += 1
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)
            self.cost_usd += float(usage.get("cost_usd") or 0.0)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "answers": self.answers,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


class ChatAnswerer:
    """Writes cited answers with an OpenAI-compatible chat model; thread-safe."""

    def __init__(self, client: OpenAIClient, options: ChatOptions) -> None:
        self.client, self.options = client, options
        self.info: ChatModelInfo = chat_model_info(options.model, options.context_window)
        self.counter = TiktokenCounter(self.info.encoding)
        self.spent = ChatUsage()

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        """A complete answer (one request, retried as the client retries)."""
        abstain = self._prepare(question, hits)
        if abstain is not None:
            return abstain
        limit = len(hits)
        while True:
            passages, body = self._request(question, hits, limit)
            try:
                reply = self.client.post("/chat/completions", body, tokens=self._tokens(body), parse=_completion)
            except UpstreamRejected as exc:
                limit = self._fewer(exc, len(passages))
                continue
            return self._finish(question, passages, hits, reply["text"], reply["usage"])

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[dict[str, Any]]:
        """Events: {"type": "delta", "text"} as the reply arrives, then {"type": "answer", "answer"}."""
        abstain = self._prepare(question, hits)
        if abstain is not None:
            yield {"type": "delta", "text": abstain.answer}
            yield {"type": "answer", "answer": abstain}
            return
        limit = len(hits)
        while True:
            passages, body = self._request(question, hits, limit)
            body = {**body, "stream": True, "stream_options": {"include_usage": True}}
            parts: list[str] = []
            usage: dict[str, Any] = {}
            try:
                for event in self.client.stream("/chat/completions", body, tokens=self._tokens(body)):
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            parts.append(delta)
                            yield {"type": "delta", "text": delta}
            except UpstreamRejected as exc:
                limit = self._fewer(exc, len(passages))
                continue
            yield {"type": "answer", "answer": self._finish(question, passages, hits, "".join(parts), usage)}
            return

    def _prepare(self, question: str, hits: Sequence[Hit]) -> Answer | None:
        """Screen the question, and abstain when no passage is close enough."""
        if self.options.moderate:
            self._screen(question)
        return abstention(
            question,
            hits,
            self.options.min_score,
            mode="chat",
            model=self.options.model,
            aside="; the model was not called",
        )

    def _request(self, question: str, hits: Sequence[Hit], limit: int) -> tuple[list[Hit], dict[str, Any]]:
        """The passages that fit, and the request body."""
        passages = self.pack(question, hits[:limit])
        body = {
            "model": self.options.model,
            "messages": messages(question, [passage_block(i, h) for i, h in enumerate(passages, 1)]),
            "max_tokens": self.options.max_tokens,
            "temperature": self.options.temperature,
        }
        return passages, body

    def pack(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
        """The best passages, in rank order, that fit the window with room for the reply."""
        fixed = sum(self.counter.count_tokens([m["content"] for m in messages(question, [])])) + _MESSAGE_OVERHEAD
        room = min(self.info.context_window - self.options.max_tokens - fixed, self.options.max_context_tokens)
        chosen: list[Hit] = []
        for hit in hits[: self.options.max_passages]:
            cost = self.counter.count_tokens([passage_block(len(chosen) + 1, hit)])[0] + 2
            if cost <= room:
                chosen.append(hit)
                room -= cost
        return chosen

    def _fewer(self, error: UpstreamRejected, packed: int) -> int:
        """After a context-length error, try again with half the passages."""
        if error.code != "context_length_exceeded" or packed <= 1:
            raise error
        return packed // 2

    def _tokens(self, body: dict[str, Any]) -> int:
        prompt = sum(self.counter.count_tokens([m["content"] for m in body["messages"]]))
        return prompt + int(body["max_tokens"])  # OpenAI counts max_tokens against TPM

    def _finish(
        self, question: str, passages: list[Hit], hits: Sequence[Hit], text: str, usage: dict[str, Any]
    ) -> Answer:
        cleaned, citations, dropped = resolve(text, passages)
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        spent = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cost_usd": chat_price(self.options.model, prompt, completion),
            "passages": len(passages),
        }
        self.spent.add(spent)
        notes = [f"dropped citations to passages that were not provided: {dropped}"] if dropped else []
        abstained = NOT_COVERED.rstrip(".").lower() in cleaned.lower()
        return Answer(
            question,
            cleaned,
            "chat",
            tuple(citations),
            tuple(hits),
            tuple(notes),
            self.options.model,
            abstained,
            tuple(dropped),
            spent,
        )

    def _screen(self, question: str) -> None:
        reply = self.client.post("/moderations", {"input": question}, parse=lambda r: r["results"][0])
        if reply.get("flagged"):
            flagged = sorted(k for k, v in (reply.get("categories") or {}).items() if v)
            raise AnswerRefused(
                f"the question was flagged by moderation ({', '.join(flagged) or 'unspecified'}) and is not answered"
            )

    def close(self) -> None:
        self.client.close()


def _completion(reply: dict[str, Any]) -> dict[str, Any]:
    message = reply["choices"][0]["message"]
    text = message.get("content")
    if not isinstance(text, str):
        raise MalformedResponse("the reply has no message content")
    return {"text": text, "usage": reply.get("usage") or {}}
