"""Turn one file into a `LoadedDocument` made of heading and text blocks.

Plain text and reStructuredText are parsed here; Markdown, HTML and PDF live in
`markdown_loader`, `html_loader` and `pdf_loader`. Every failure becomes `UnreadableDocument`.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from ingest.errors import UnreadableDocument
from ingest.html_loader import declared_charset, parse_html
from ingest.markdown_loader import front_matter, parse_markdown
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
_TITLE_SCAN = 20_000  # characters of a plain text searched for its title
_HEADER_LINE = re.compile(r"([A-Za-z][\w-]{0,40}):[ \t]*(.*)")
_MAIL_FIELDS = frozenset({"from", "to", "cc", "bcc", "date", "sent", "subject", "reply-to", "message-id"})

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
    for encoding in (declared, "utf-8"):
        if encoding:
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    mostly_utf8 = _utf8_with_replacement(data)
    if mostly_utf8 is not None:
        return mostly_utf8
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _utf8_with_replacement(data: bytes) -> str | None:
    """The text as UTF-8 with U+FFFD for bad bytes, when its valid non-ASCII characters outnumber them.

    In cp1252 text a valid UTF-8 sequence is rare (it would read "Ã©"), so a file with
    many good sequences and a stray bad byte is UTF-8 that was damaged, not cp1252.
    """
    text = data.decode("utf-8", errors="replace")
    replaced = text.count("\ufffd") - data.count("\ufffd".encode())
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore")) - replaced
    return text if non_ascii >= replaced else None


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
    return _text_title(text[:_TITLE_SCAN]), [Block(p) for p in _paragraphs(text)]


def _text_title(head: str) -> str:
    """The first line, unless the text opens with e-mail headers: then their Subject ("" if none)."""
    lines = head.lstrip().split("\n")
    fields = _mail_fields(list(itertools.takewhile(str.strip, lines)))
    return lines[0] if fields is None else fields.get("subject", "")


def _mail_fields(block: list[str]) -> dict[str, str] | None:
    """The fields of an e-mail header block (names lowercased), or None if `block` is not one."""
    mbox = bool(block) and block[0].startswith("From ")  # an mbox file's separator line
    fields: dict[str, str] = {}
    for line in block[1:] if mbox else block:
        if line[:1] in (" ", "\t") and fields:
            continue  # a folded header goes on
        match = _HEADER_LINE.fullmatch(line.rstrip())
        if not match:
            return None
        fields.setdefault(match.group(1).lower(), match.group(2).strip())
    is_mail = "subject" in fields or mbox or len(fields) >= 2
    return fields if is_mail and _MAIL_FIELDS & fields.keys() else None


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
# Every pattern scans only up to the next backtick (or a bounded role name), so a line of
# openers with nothing to close them costs its length, not its length squared.
_ROLE = r":[\w+-]{1,32}(?::[\w+-]{1,32}){0,2}:"
_RST_LINKS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(rf"(?:{_ROLE})?`([^`<]*+)<[^>`]++>`_{{0,2}}"), lambda m: m.group(1).rstrip()),
    (re.compile(rf"{_ROLE}`([^`]++)`"), r"\1"),
    (re.compile(r"`([^`]++)`_{0,2}"), r"\1"),
)
_STRONG = (re.compile(r"\*\*(?=\S)"), re.compile(r"(?<=\S)\*\*"))
_EMPHASIS = (re.compile(r"(?<![\w*])\*(?=\S)"), re.compile(r"(?<=\S)\*(?![\w*])"))
_RST_TAIL: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:(?<!\s)\s++)?\[(?:#|\*|#?[\w-]++)\]_"), ""),
    (re.compile(r"(?<=\w)__?(?=[\s.,;:!?)]|$)"), ""),
    (re.compile(r"(\S)::$"), r"\1:"),
    (re.compile(r"(?<!\s)\s*+::$"), ""),
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
    return "".join(p if n % 2 else _rst_markup(p) for n, p in enumerate(pieces)).strip()


def _rst_markup(text: str) -> str:
    """Roles, links, strong and emphasis markup dropped, their words kept."""
    for pattern, repl in _RST_LINKS:
        text = pattern.sub(repl, text)
    text = _unwrap(_unwrap(text, *_STRONG), *_EMPHASIS)
    return _sub_all(_RST_TAIL, text)


def _unwrap(text: str, start: re.Pattern[str], end: re.Pattern[str]) -> str:
    """Drop the markup around spans: each start string pairs with the first end string after it.

    One pass: a regex `start(.+?)end` would rescan to the end of the text after each unpaired start.
    """
    kept: list[str] = []
    at = 0
    while (opening := start.search(text, at)) and (closing := end.search(text, opening.end() + 1)):
        kept += [text[at : opening.start()], text[opening.end() : closing.start()]]
        at = closing.end()
    return "".join(kept) + text[at:]


_PARSERS: dict[str, Callable[[str], Parsed]] = {
    "text": _parse_text,
    "markdown": parse_markdown,
    "rst": _parse_rst,
}
