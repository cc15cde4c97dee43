"""Headings and text blocks from an HTML page, with lxml's (libxml2's) HTML parser.

Scripts, styles, the page head and site chrome (nav, aside, footer) are dropped;
the `<title>` is kept as the document title. Not the standard library's `html.parser`:
on some malformed pages (`"<a\\n" * 40000`) its time grows with the square of the size.
libxml2 reads in one pass, repairs what it can and closes every element it opens.
"""

from __future__ import annotations

import codecs
import re

from lxml import etree

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
# Deeper than any real page (Chrome's parser stops nesting at 512); past it, libxml2 spends time
# that grows with depth on each tag, so a hostile page could take minutes.
_MAX_DEPTH = 1024
_FEED_CHARS = 16384
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
    parser = etree.HTMLParser(target=extractor, recover=True, no_network=True, huge_tree=True)
    try:
        # In pieces: an error raised by the target surfaces only when a feed() returns.
        for at in range(0, len(text), _FEED_CHARS):
            parser.feed(text[at : at + _FEED_CHARS])
        parser.close()
    except _TooDeep as exc:
        raise UnreadableDocument(path, f"HTML elements nested over {_MAX_DEPTH} deep") from exc
    except (etree.LxmlError, ValueError) as exc:
        raise UnreadableDocument(path, f"malformed HTML: {str(exc)[:100]}") from exc
    blocks = extractor.finish()
    first_h1 = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    return extractor.title or first_h1, blocks


class _TooDeep(Exception):
    """Raised inside the parser to stop it on a page nested deeper than `_MAX_DEPTH`."""


class _Extractor:
    """A parser target: collects text between block-level tags; whitespace collapses except in <pre>.

    libxml2 sends an end for every start (it closes what the page left open), so counters suffice.
    """

    def __init__(self) -> None:
        self.title = ""
        self._blocks: list[Block] = []
        self._buffer: list[str] = []
        self._depth = 0
        self._skipping = 0  # depth inside an element whose content is dropped
        self._svg = 0
        self._heading = 0
        self._pre = 0
        self._in_title = False

    def finish(self) -> list[Block]:
        self._flush()
        return self._blocks

    def start(self, tag: str, attrib: object) -> None:
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise _TooDeep
        if tag == "title":
            self._in_title = not self.title and not self._svg
        elif tag == "svg":
            self._svg += 1
        if self._skipping or tag in _SKIP:
            self._skipping += 1
        else:
            self._open(tag)

    def end(self, tag: str) -> None:
        self._depth -= 1
        if tag == "title":
            self._in_title = False
        elif tag == "svg":
            self._svg = max(self._svg - 1, 0)
        if self._skipping:
            self._skipping -= 1
        else:
            self._close(tag)

    def data(self, data: str) -> None:
        if self._in_title:
            self.title = " ".join(f"{self.title} {data}".split())
        elif not self._skipping:
            self._buffer.append(data)

    def close(self) -> None:
        """Called by lxml at the end of the page."""

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
