"""Headings and text blocks from Markdown, with markdown-it-py (CommonMark, plus tables and ~~strike~~).

A real parser, not line regexes: its time grows linearly with the input, so a hostile file
(`"**a " * 250000`, a megabyte of `[`) parses in seconds. Front matter is read here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.records import Block

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*+(.*)$", re.MULTILINE)
# A scalar `key: value` line; lists and maps (`[` or `{` first) are skipped. Possessive, so no backtracking.
_FRONT_SCALAR = re.compile(r"^([A-Za-z_][\w.-]{0,63}):[ \t]++([^\[{\n][^\n]*+)$")
_MAX_ATTRIBUTES = 16
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def parse_markdown(text: str) -> tuple[str, list[Block]]:
    """The title (front matter `title:`, else the first h1, else "") and the blocks of a Markdown text."""
    meta_title, body = _split_front_matter(text)
    blocks = list(_blocks(_PARSER.parse(body)))
    first_h1 = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    return meta_title or first_h1, blocks


def front_matter(text: str) -> dict[str, object]:
    """Scalar `key: value` lines of a Markdown file's front matter, as document attributes."""
    match = _FRONT_MATTER.match(text)
    attributes: dict[str, object] = {}
    for line in (match.group(1) or "").splitlines() if match else []:
        item = _FRONT_SCALAR.match(line)
        if item and len(attributes) < _MAX_ATTRIBUTES:
            attributes[item.group(1)] = _scalar(item.group(2).strip())
    return attributes


def _scalar(value: str) -> object:
    """A front-matter value: true/false, a number, or a (possibly quoted) string."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        number: float = int(value)
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
    if math.isfinite(number) and abs(number) < 2**63:  # what every store holds (Milvus: int64, finite doubles)
        return number
    return value.strip("'\"")[:512]


def _split_front_matter(text: str) -> tuple[str, str]:
    """The front matter's `title:` (or "") and the text without the front matter."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return "", text
    title = _FRONT_TITLE.search(match.group(1) or "")
    value = title.group(1).strip().strip("'\"") if title else ""
    return value, text[match.end() :]


def _blocks(tokens: Sequence[Token]) -> Iterator[Block]:
    """Headings, paragraphs, code, HTML and tables as blocks; a whole list (or table) is one block."""
    lines: list[str] = []  # the lines of the list or table being read
    markers: list[str] = []  # the marker of each open list item, innermost last
    fresh = False  # the next paragraph is the first of its list item
    for n, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            yield from _flush(lines)
            yield Block(_inline(tokens[n + 1]), "heading", int(token.tag[1]))
        elif kind == "list_item_open":
            markers.append(f"{token.info}{token.markup}" if token.info else token.markup)
            fresh = True
        elif kind == "list_item_close":
            markers.pop()
        elif kind == "paragraph_open" and markers:
            indent = "  " * (len(markers) - 1)
            lead = f"{markers[-1]} " if fresh else "  "
            lines.append(indent + lead + _inline(tokens[n + 1]))
            fresh = False
        elif kind == "paragraph_open":
            yield Block(_inline(tokens[n + 1]))
        elif kind in ("fence", "code_block"):
            yield from _flush(lines)
            yield Block(token.content.rstrip("\n"))
        elif kind == "html_block":
            yield from _flush(lines)
            yield Block(_strip_tags(token.content))
        elif kind == "tr_close":
            lines.append(" | ".join(_cells(tokens, n)))
        elif kind in ("bullet_list_close", "ordered_list_close", "table_close") and not markers:
            yield from _flush(lines)
    yield from _flush(lines)


def _cells(tokens: Sequence[Token], end: int) -> list[str]:
    """The text of each cell of the table row that closes at `tokens[end]`."""
    cells: list[str] = []
    n = end - 1
    while tokens[n].type != "tr_open":
        if tokens[n].type == "inline":
            cells.append(_inline(tokens[n]))
        n -= 1
    return cells[::-1]


def _flush(lines: list[str]) -> Iterator[Block]:
    if lines:
        yield Block("\n".join(lines))
        lines.clear()


def _strip_tags(html: str) -> str:
    """The text of a raw HTML block, without its tags and comments (one pass: no regex backtracking)."""
    kept: list[str] = []
    at = 0
    while (start := html.find("<", at)) >= 0:
        kept.append(html[at:start])
        if html.startswith("<!--", start):
            close = html.find("-->", start + 4)
            if close < 0:
                return "".join(kept)  # an unclosed comment runs to the end
            at = close + 3
        else:
            close = html.find(">", start)
            if close < 0:
                return "".join(kept) + html[start:]  # a "<" with no ">" after it is text
            at = close + 1
    return "".join(kept) + html[at:]


def _inline(token: Token) -> str:
    """The words of an inline run: markup, links' targets and HTML tags go; code spans and alt text stay."""
    return "".join(_inline_text(token.children or [])).strip()


def _inline_text(children: Sequence[Token]) -> Iterator[str]:
    for child in children:
        if child.type in ("text", "code_inline"):
            yield child.content
        elif child.type in ("softbreak", "hardbreak"):
            yield "\n"
        elif child.type == "image":
            yield from _inline_text(child.children or [])
