"""A file_search answer as OpenAI's stream of events, in OpenAI's order, each with its `sequence_number`.

response.created, response.in_progress
response.output_item.added (file_search_call), response.file_search_call.in_progress, .searching,
    .completed, response.output_item.done
response.output_item.added (message), response.content_part.added, response.output_text.delta ...
    (as the chat model writes), response.output_text.annotation.added ..., response.output_text.done,
    response.content_part.done, response.output_item.done
response.completed                          or, once anything fails, response.failed
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Generator, Iterator
from typing import Any

from ingest import UpstreamError
from search.answers.extractive import Answer
from search.errors import ERROR_FAMILIES, AnswerRefused

from ...error_shapes import log
from ...registry import IndexRegistry
from ..vector_stores.search import StoreHit
from .output import Run, file_of, find, message, response, search_call, text_part, usage
from .text import MarkerStripper, citations_at

Event = dict[str, Any]


class ResponseStream:
    """The events of one streamed response; `keep` receives the final response (completed or failed)."""

    def __init__(self, run: Run, registry: IndexRegistry, keep: Callable[[dict[str, Any]], None]) -> None:
        self.run, self.registry, self.keep = run, registry, keep
        self.sequence = itertools.count()
        self.output: list[dict[str, Any]] = []  # the items done so far

    def __iter__(self) -> Iterator[Event]:
        try:
            yield self._event("response.created", response=response(self.run, "in_progress", []))
            yield self._event("response.in_progress", response=response(self.run, "in_progress", []))
            hits = yield from self._search()
            answer = yield from self._answer(hits)
        except Exception as exc:  # the status line is out: an event, not a dropped connection, tells the client
            yield self._failed(exc)
            return
        final = response(self.run, "completed", self.output, spent=usage(answer))
        self.keep(final)
        yield self._event("response.completed", response=final)

    def _event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, "sequence_number": next(self.sequence), **fields}

    def _item(self, kind: str, item_id: str, index: int, **fields: Any) -> Event:
        return self._event(kind, item_id=item_id, output_index=index, **fields)

    def _search(self) -> Generator[Event, None, list[StoreHit]]:
        run, item = self.run, self.run.search_id
        yield self._event("response.output_item.added", output_index=0, item=search_call(run, "in_progress", None))
        yield self._item("response.file_search_call.in_progress", item, 0)
        yield self._item("response.file_search_call.searching", item, 0)
        hits = find(run, self.registry)
        yield self._item("response.file_search_call.completed", item, 0)
        self.output.append(search_call(run, "completed", hits))
        yield self._event("response.output_item.done", output_index=0, item=self.output[0])
        return hits

    def _answer(self, hits: list[StoreHit]) -> Generator[Event, None, Answer]:
        run, item = self.run, self.run.message_id
        yield self._event("response.output_item.added", output_index=1, item=message(run, "in_progress", []))
        yield self._item("response.content_part.added", item, 1, content_index=0, part=text_part("", []))
        stripper, parts, answer = MarkerStripper(len(hits)), [], None
        for event in run.service.answer_stream(run.request.question, [h.hit for h in hits]):
            if event["type"] == "answer":
                answer = event["answer"]
                continue
            piece = stripper.feed(event["text"])
            if piece:
                parts.append(piece)
                yield self._item("response.output_text.delta", item, 1, content_index=0, delta=piece, logprobs=[])
        rest = stripper.finish()
        if rest:
            parts.append(rest)
            yield self._item("response.output_text.delta", item, 1, content_index=0, delta=rest, logprobs=[])
        assert isinstance(answer, Answer), "an answer stream ends with the answer"
        cited = citations_at(stripper.marks, answer, file_of(hits))
        for n, annotation in enumerate(cited):
            added = "response.output_text.annotation.added"
            yield self._item(added, item, 1, content_index=0, annotation_index=n, annotation=annotation)
        text = "".join(parts)
        yield self._item("response.output_text.done", item, 1, content_index=0, text=text, logprobs=[])
        part = text_part(text, cited)
        yield self._item("response.content_part.done", item, 1, content_index=0, part=part)
        self.output.append(message(run, "completed", [part]))
        yield self._event("response.output_item.done", output_index=1, item=self.output[1])
        return answer

    def _failed(self, exc: Exception) -> Event:
        if isinstance(exc, ERROR_FAMILIES):
            code = "invalid_prompt" if isinstance(exc, AnswerRefused) else "server_error"
            message_text = f"{type(exc).__name__}: {exc}" if isinstance(exc, UpstreamError) else str(exc)
        else:
            log.exception("unexpected error in a /v1/responses stream")
            code, message_text = "server_error", "the server failed unexpectedly (its log has the details)"
        failed = response(self.run, "failed", self.output, error={"code": code, "message": message_text})
        self.keep(failed)
        return self._event("response.failed", response=failed)


def server_sent(events: Iterator[Event]) -> Iterator[str]:
    """`event:` and `data:` lines per event, as OpenAI streams them."""
    for event in events:
        yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
