"""Turn one file into a `LoadedDocument` made of heading and text blocks.

Plain text, Markdown and reStructuredText are parsed here; HTML and PDF live in
`html_loader` and `pdf_loader`. Every failure becomes `UnreadableDocument`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from ingest.errors import UnreadableDocument
from ingest.html_loader import declared_charset, parse_html
from ingest.pdf_loader import load_pdf
from ingest.records import Block, LoadedDocument
from ingest.walk import file_type

_TITLE_CHARS = 120
_SNIFF_BYTES = 8192
_MAX_CONTROL_SHARE = 0.05
# Control bytes that do not occur in text (tab, newlines, form feed and escape do).
_CONTROL_BYTES = bytes(sorted(set(range(32)) - {9, 10, 12, 13, 27})) + b"\x7f"
# UTF-32 first: its little-endian BOM starts with the UTF-16 one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n\s*")

Parsed = tuple[str, list[Block]]


def load(path: Path, data: bytes | None = None) -> LoadedDocument:
    """Read (unless its bytes are given) and parse one document; raise `UnreadableDocument` if it yields no text."""
    kind = file_type(path)
    data = _read(path) if data is None else _nonempty(path, data)
    if kind == "pdf":
        title, blocks, pages = load_pdf(str(path), data)
        return _document(path, kind, title, blocks, pages)
    text = _decode(str(path), data, declared_charset(data) if kind == "html" else None)
    if kind == "html":
        title, blocks = parse_html(str(path), text)
    else:
        title, blocks = _PARSERS[kind](text)
    document = _document(path, kind, title, blocks)
    return replace(document, attributes=front_matter(text)) if kind == "markdown" else document


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise UnreadableDocument(str(path), "permission denied") from exc
    except OSError as exc:
        raise UnreadableDocument(str(path), (exc.strerror or str(exc)).lower()) from exc
    return _nonempty(path, data)


def read_file(path: Path) -> bytes:
    """A file's bytes, or `UnreadableDocument` saying why not (permission denied, ...)."""
    return _read(path)


def _nonempty(path: Path, data: bytes) -> bytes:
    if not data.strip():
        raise UnreadableDocument(str(path), "empty file")
    return data


def _decode(path: str, data: bytes, declared: str | None = None) -> str:
    """Decode by BOM, else declared charset, UTF-8, cp1252, latin-1; newlines become \\n."""
    bom = next((name for mark, name in _BOMS if data.startswith(mark)), None)
    if bom is None and _looks_binary(data[:_SNIFF_BYTES]):
        raise UnreadableDocument(path, "binary file, not text")
    text = data.decode(bom, errors="replace") if bom else _decode_legacy(data, declared)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UnreadableDocument(path, "empty file")
    return text


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls > _MAX_CONTROL_SHARE * len(sample)


def _decode_legacy(data: bytes, declared: str | None) -> str:
    # cp1252 is what most legacy "ANSI" files are; latin-1 decodes any byte at all.
    for encoding in (declared, "utf-8", "cp1252"):
        if encoding:
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    return data.decode("latin-1")


def _document(path: Path, kind: str, title: str, blocks: list[Block], pages: int | None = None) -> LoadedDocument:
    clean = tuple(replace(b, text=b.text.strip()) for b in blocks if b.text.strip())
    if not clean:
        raise UnreadableDocument(str(path), "no text content")
    return LoadedDocument(str(path), kind, _title(title) or path.stem, clean, pages)


def _title(candidate: str) -> str:
    title = " ".join(candidate.split())
    if len(title) > _TITLE_CHARS:
        title = title[:_TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return title


def _paragraphs(text: str) -> list[str]:
    """Split on blank lines; trailing spaces go, line breaks inside a paragraph stay."""
    parts = (p.strip() for p in _PARAGRAPH_BREAK.split(text))
    return ["\n".join(line.rstrip() for line in p.split("\n")) for p in parts if p]


def _parse_text(text: str) -> Parsed:
    first_line = next((line for line in text.split("\n") if line.strip()), "")
    return first_line, [Block(p) for p in _paragraphs(text)]


# --- Markdown -------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_FRONT_SCALAR = re.compile(r"^([A-Za-z_][\w.-]{0,63}):[ \t]+([^\[{\n][^\n]*?)[ \t]*$")  # skips lists and maps
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_ATX_CLOSE = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*\S+")
_QUOTE_MARKER = re.compile(r"^ {0,3}(?:>[ \t]?)+")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# Links may wrap code spans, so they go first; the rest must not touch code spans.
_MD_LINKS = (
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"!?\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])"), r"\1"),
)
_MD_MARKUP = (
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),
    (re.compile(r"</?[A-Za-z][^>\n]*>"), ""),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
)


def _parse_markdown(text: str) -> Parsed:
    meta_title, body = _split_front_matter(text)
    blocks = list(_markdown_blocks(body.split("\n")))
    first_h1 = next((b.text for b in blocks if b.kind == "heading" and b.level == 1), "")
    return meta_title or first_h1, blocks


def front_matter(text: str) -> dict[str, object]:
    """Scalar `key: value` lines of a Markdown file's front matter, as document attributes."""
    match = _FRONT_MATTER.match(text)
    attributes: dict[str, object] = {}
    for line in (match.group(1) or "").splitlines() if match else []:
        item = _FRONT_SCALAR.match(line)
        if item and len(attributes) < 16:
            attributes[item.group(1)] = _scalar(item.group(2).strip())
    return attributes


def _scalar(value: str) -> object:
    """A front-matter value: true/false, a number, or a (possibly quoted) string."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value.strip("'\"")[:512]


def _split_front_matter(text: str) -> tuple[str, str]:
    """The front matter's `title:` (or "") and the text without the front matter."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return "", text
    title = _FRONT_TITLE.search(match.group(1) or "")
    value = title.group(1).strip("'\"") if title else ""
    return value, text[match.end() :]


def _markdown_blocks(lines: list[str]) -> Iterator[Block]:
    para: list[str] = []
    i = 0
    while i < len(lines):
        line, i = lines[i], i + 1
        fence, atx = _FENCE.match(line), _ATX.match(line)
        if fence:
            yield from _md_flush(para)
            code, i = _take_fence(lines, i, fence.group(1))
            yield Block(code)
        elif para and _SETEXT.match(line):
            level = 1 if line.strip().startswith("=") else 2
            yield Block(_md_inline(" ".join(para)), "heading", level)
            para.clear()
        elif atx:
            yield from _md_flush(para)
            heading = _ATX_CLOSE.sub("", atx.group(2) or "")
            yield Block(_md_inline(heading), "heading", len(atx.group(1)))
        elif not line.strip() or _THEMATIC_BREAK.match(line):
            yield from _md_flush(para)
        elif not _LINK_DEFINITION.match(line):
            para.append(_QUOTE_MARKER.sub("", line))
    yield from _md_flush(para)


def _take_fence(lines: list[str], i: int, marker: str) -> tuple[str, int]:
    """The code inside a fence opened just before line `i`, and the line after it."""
    closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
    start = i
    while i < len(lines) and not closing.match(lines[i]):
        i += 1
    return "\n".join(lines[start:i]), i + 1


def _md_flush(para: list[str]) -> Iterator[Block]:
    if para:
        yield Block(_md_inline("\n".join(para)))
        para.clear()


def _md_inline(text: str) -> str:
    """Drop link, image and emphasis markup but keep the words (and code spans as-is)."""
    text = _sub_all(_MD_LINKS, text)
    pieces = _CODE_SPAN.split(text)  # text, ticks, code, text, ticks, code, ...
    kept = [_sub_all(_MD_MARKUP, p) if n % 3 == 0 else p.strip() for n, p in enumerate(pieces)]
    return "".join(p for n, p in enumerate(kept) if n % 3 != 1).strip()


def _sub_all(rules: tuple[tuple[re.Pattern[str], str], ...], text: str) -> str:
    for pattern, repl in rules:
        text = pattern.sub(repl, text)
    return text


# --- reStructuredText -------------------------------------------------------------

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+[ \t]*$")
_EXPLICIT = re.compile(r"^\s*\.\.(?:\s+(.*))?$")
_DIRECTIVE = re.compile(r"^([\w:+-]+)::\s*(.*)$")
_FOOTNOTE = re.compile(r"^\[[^\]]+\]\s+(.*)$")
_OPTION = re.compile(r"^\s+:[\w -]+:(?:\s|$)")
_INDENTED = re.compile(r"^\s+\S")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_ADMONITIONS = frozenset(
    "admonition attention caution danger error hint important note seealso sidebar tip "
    "topic warning versionadded versionchanged deprecated".split()
)
_RST_INLINE = (
    (re.compile(r"(?::[\w:+-]+:)?`([^`<]*?)\s*<[^>`]+>`_{0,2}"), r"\1"),
    (re.compile(r":[\w:+-]+:`([^`]+)`"), r"\1"),
    (re.compile(r"`([^`]+)`_{0,2}"), r"\1"),
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL), r"\1"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", re.DOTALL), r"\1"),
    (re.compile(r"\s*\[(?:#|\*|#?[\w-]+)\]_"), ""),
    (re.compile(r"(?<=\w)__?(?=[\s.,;:!?)]|$)"), ""),
    (re.compile(r"(\S)::$"), r"\1:"),
    (re.compile(r"\s*::$"), ""),
)


def _parse_rst(text: str) -> Parsed:
    blocks = list(_rst_blocks(text.split("\n")))
    first = next((b.text for b in blocks if b.kind == "heading"), "")
    return first, blocks


def _rst_blocks(lines: list[str]) -> Iterator[Block]:
    styles: list[tuple[str, bool]] = []  # adornment styles in order of first use
    para: list[str] = []
    i = 0
    while i < len(lines):
        title, style, after = _rst_title(lines, i) if not para else ("", None, i)
        if style:
            if style not in styles:
                styles.append(style)
            yield Block(_rst_inline(title), "heading", min(styles.index(style) + 1, 6))
            i = after
            continue
        line, i = lines[i], i + 1
        explicit = _EXPLICIT.match(line)
        if explicit:
            yield from _rst_flush(para)
            kept, i = _rst_explicit(explicit.group(1) or "", lines, i)
            para += [kept] if kept else []
        elif not line.strip() or (not para and _ADORNMENT.match(line)):
            yield from _rst_flush(para)  # a blank line or a transition
        else:
            para.append(line.strip())
    yield from _rst_flush(para)


def _rst_title(lines: list[str], i: int) -> tuple[str, tuple[str, bool] | None, int]:
    """A section title starting at line `i`: its text, adornment style and next line."""
    first, second, third = [*lines[i : i + 3], "", "", ""][:3]
    overline = _ADORNMENT.match(first)
    if overline and second.strip() and third.strip() == first.strip():
        return second.strip(), (overline.group(1), True), i + 3
    underline = _ADORNMENT.match(second)
    is_text = first.strip() and not first[0].isspace() and not overline
    if is_text and underline and len(second.strip()) >= len(first.strip()):
        return first.strip(), (underline.group(1), False), i + 2
    return "", None, i


def _rst_explicit(markup: str, lines: list[str], i: int) -> tuple[str, int]:
    """The text worth keeping from explicit markup (`.. note:: text`), and the line after it.

    A directive's option lines and a comment's indented lines are markup, not text.
    """
    directive, footnote = _DIRECTIVE.match(markup), _FOOTNOTE.match(markup)
    if footnote:
        return footnote.group(1), i
    tail = _OPTION if directive else _INDENTED
    while i < len(lines) and tail.match(lines[i]):
        i += 1
    admonition = directive and directive.group(1).lower() in _ADMONITIONS
    return (directive.group(2) if directive and admonition else ""), i


def _rst_flush(para: list[str]) -> Iterator[Block]:
    text = "\n".join(line for line in para if line)
    if text:
        yield Block(_rst_inline(text))
    para.clear()


def _rst_inline(text: str) -> str:
    pieces = _LITERAL.split(text)  # text, literal, text, literal, ...
    return "".join(p if n % 2 else _sub_all(_RST_INLINE, p) for n, p in enumerate(pieces)).strip()


_PARSERS: dict[str, Callable[[str], Parsed]] = {
    "text": _parse_text,
    "markdown": _parse_markdown,
    "rst": _parse_rst,
}
