"""Headings and text blocks from an HTML page, with the standard library's parser.

Scripts, styles, the page head and site chrome (nav, aside, footer) are dropped;
the `<title>` is kept as the document title.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

from ingest.errors import UnreadableDocument
from ingest.records import Block

_SKIP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "math",
        "head",
        "nav",
        "footer",
        "aside",
        "iframe",
        "object",
        "canvas",
        "select",
        "button",
    }
)
_BLOCKS = frozenset(
    {
        "p",
        "li",
        "pre",
        "blockquote",
        "td",
        "th",
        "div",
        "section",
        "article",
        "main",
        "header",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "tr",
        "thead",
        "tbody",
        "tfoot",
        "figure",
        "figcaption",
        "caption",
        "form",
        "fieldset",
        "legend",
        "address",
        "details",
        "summary",
        "hr",
        "body",
        "html",
    }
)
_HEADINGS = frozenset(f"h{n}" for n in range(1, 7))
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
# Browsers read these labels as windows-1252, and so do we.
_AS_CP1252 = frozenset({"ascii", "iso8859-1"})


def declared_charset(data: bytes) -> str | None:
    """The codec named by a `<meta charset>` near the top of the page, if Python knows it."""
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    # A page we can read as ASCII bytes is not UTF-16, whatever it claims.
    if name.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return "cp1252" if name in _AS_CP1252 else name


def parse_html(path: str, text: str) -> tuple[str, list[Block]]:
    """The page title (`<title>`, else the first h1, else "") and its blocks."""
    extractor = _Extractor()
    try:
        extractor.feed(text)
        extractor.close()
    except AssertionError as exc:  # html.parser's way of rejecting some markup
        raise UnreadableDocument(path, f"malformed HTML: {exc}") from exc
    blocks = extractor.finish()
    first_h1 = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    return extractor.title or first_h1, blocks


class _Extractor(HTMLParser):
    """Collects text between block-level tags; whitespace collapses except in <pre>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self._blocks: list[Block] = []
        self._buffer: list[str] = []
        self._skipping: list[str] = []  # open tags whose content is dropped
        self._heading = 0
        self._pre = 0
        self._in_title = False

    def finish(self) -> list[Block]:
        self._flush()
        return self._blocks

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = not self.title and "svg" not in self._skipping
        elif tag == "body":  # an unclosed <head> ends here
            self._skipping = [t for t in self._skipping if t != "head"]
        if tag in _SKIP:
            self._skipping.append(tag)
        elif not self._skipping:
            self._open(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._skipping:
            last = len(self._skipping) - 1 - self._skipping[::-1].index(tag)
            del self._skipping[last:]
        elif not self._skipping:
            self._close(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = " ".join(f"{self.title} {data}".split())
        elif not self._skipping:
            self._buffer.append(data)

    def _open(self, tag: str) -> None:
        if tag in _HEADINGS or tag in _BLOCKS:
            self._flush()
        if tag in _HEADINGS:
            self._heading = int(tag[1])
        elif tag == "pre":
            self._pre += 1
        elif tag == "br":
            self._buffer.append("\n" if self._pre else " ")

    def _close(self, tag: str) -> None:
        if tag in _HEADINGS or tag in _BLOCKS:
            self._flush()
        if tag in _HEADINGS:
            self._heading = 0
        elif tag == "pre":
            self._pre = max(self._pre - 1, 0)

    def _flush(self) -> None:
        raw = "".join(self._buffer)
        self._buffer.clear()
        text = raw.strip("\n") if self._pre else " ".join(raw.split())
        if text.strip():
            kind = "heading" if self._heading else "text"
            self._blocks.append(Block(text, kind, self._heading))
