"""An answer's text as OpenAI's `output_text`: the [n] markers taken out, each becoming a `file_citation` there.

OpenAI's file_search answers carry no markers in their text: a citation is an annotation whose `index`
is the character offset where the marker stood (just after the cited words). `MarkerStripper` does that
to a text arriving in pieces, as a chat model streams it, and gives the same text and offsets whatever
the pieces: it holds back a tail that may still become a marker (`" [1"`) until it knows. Only numbers
of passages the answer was drawn from make a marker: `array[0]` or `in [2020]` are the text's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from indexes import StoredChunk
from search.answers.citations import numbers_in
from search.answers.extractive import Answer

# A marker as `search/answers/citations.py` reads it, with the blanks before it (they go with it).
_MARKER = re.compile(r"[ \t]*\[(\s*\d+(?:\s*(?:,|-|–)\s*\d+)*\s*)\]")
_OPEN_TAIL = re.compile(r"[ \t]*(?:\[[\s\d,\-–]*)?\Z")  # what may still turn into a marker


@dataclass(frozen=True)
class Mark:
    """Where a marker stood in the text without markers, and the passage numbers it named."""

    offset: int
    numbers: tuple[int, ...]


class MarkerStripper:
    """Takes the [n] markers (n from 1 to `passages`) out of a text fed piece by piece; `marks` says where they were."""

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self.held = ""
        self.length = 0  # characters given out so far
        self.marks: list[Mark] = []

    def feed(self, piece: str) -> str:
        """The text that is certain now (possibly empty)."""
        pending, out, last = self.held + piece, [], 0
        for match in _MARKER.finditer(pending):
            numbers = tuple(dict.fromkeys(numbers_in(match.group(1))))
            if not numbers or not all(1 <= n <= self.passages for n in numbers):
                continue  # brackets of the text itself
            out.append(pending[last : match.start()])
            self.length += match.start() - last
            self.marks.append(Mark(self.length, numbers))
            last = match.end()
        rest = pending[last:]
        tail = _OPEN_TAIL.search(rest)
        cut = tail.start() if tail is not None else len(rest)
        out.append(rest[:cut])
        self.length += cut
        self.held = rest[cut:]
        return "".join(out)

    def finish(self) -> str:
        """What was held back (a `[` that never became a marker), without trailing blanks."""
        rest, self.held = self.held.rstrip(), ""
        self.length += len(rest)
        return rest


def strip_markers(text: str, passages: int) -> tuple[str, list[Mark]]:
    """The text without markers of passages 1 to `passages`, and where each one was."""
    stripper = MarkerStripper(passages)
    return stripper.feed(text) + stripper.finish(), stripper.marks


FileOf = Callable[[StoredChunk], tuple[str, str] | None]  # a passage's (file_id, filename)


def citations_at(marks: Sequence[Mark], answer: Answer, file_of: FileOf) -> list[dict[str, Any]]:
    """A `file_citation` per passage each marker cites, at the marker's place; markers the answer dropped give none."""
    cited = {c.number: c.stored for c in answer.citations}
    out = []
    for mark in marks:
        for number in mark.numbers:
            found = file_of(cited[number]) if number in cited else None
            if found is not None:
                out.append({"type": "file_citation", "file_id": found[0], "filename": found[1], "index": mark.offset})
    return out
