"""Text blocks from a PDF, page by page, with pypdf.

pypdf's exceptions, warnings and log messages stop here: every failure becomes
`UnreadableDocument` with a short reason.
"""

from __future__ import annotations

import io
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from ingest.errors import UnreadableDocument
from ingest.records import Block

# pypdf gives one line per visual line and no blank lines between paragraphs; a line
# much shorter than the page's usual width ends a paragraph (or is a heading).
_SHORT_LINE = 0.65
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\xad": ""}
)
_SENTENCE_ENDS = (".", "!", "?", ":", '"', "\u201d")
_HYPHEN_END = re.compile(r"[^\W\d_]-$")
_LETTER = re.compile(r"[^\W\d_]")
# Running headers and footers sit in the first and last few lines of a page; a line shape
# (digits as #) found there on most pages of a document of 3 or more pages is one.
_EDGE_LINES = 3
_RUNNING_MIN_PAGES = 3
_DIGITS = re.compile(r"\d+")
_NO_TITLE = re.compile(
    r"^(untitled\b.*|microsoft \w+ - .*|.*\.(docx?|odt|rtf|tex|dvi|ps|pdf|pptx?|xlsx?|indd))$",
    re.IGNORECASE,
)


def load_pdf(path: str, data: bytes) -> tuple[str, list[Block], int]:
    """The title ("" if none), text blocks with 1-based page numbers, and page count."""
    with _quiet_pypdf():
        try:
            return _load(path, data)
        except UnreadableDocument:
            raise
        except DependencyError as exc:
            reason = "encrypted PDF (AES needs the 'cryptography' package)"
            raise UnreadableDocument(path, reason) from exc
        except Exception as exc:  # pypdf raises many kinds of errors on damaged files
            raise UnreadableDocument(path, f"corrupt PDF: {_short(exc)}") from exc


def _load(path: str, data: bytes) -> tuple[str, list[Block], int]:
    reader = PdfReader(io.BytesIO(data))
    # Many PDFs are "encrypted" with an empty user password, only to set permissions.
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise UnreadableDocument(path, "encrypted PDF (password required)")
    texts = _without_running_lines(_page_texts(reader))
    if not texts:
        raise UnreadableDocument(path, "corrupt PDF: no pages")
    blocks = [Block(p, page=n) for n, text in enumerate(texts, 1) for p in _paragraphs(text)]
    if not blocks:
        raise UnreadableDocument(path, "no extractable text (scanned PDF? OCR it first)")
    return _metadata_title(reader) or _first_line(texts), blocks, len(texts)


def _page_texts(reader: PdfReader) -> list[str]:
    """Each page's text; a damaged page gives "" unless every page is damaged."""
    texts: list[str] = []
    errors: list[Exception] = []
    for page in reader.pages:
        try:
            texts.append(page.extract_text() or "")
        except Exception as exc:  # one bad content stream should not cost the others
            texts.append("")
            errors.append(exc)
    if errors and len(errors) == len(texts):
        raise errors[0]
    return texts


def _without_running_lines(texts: list[str]) -> list[str]:
    """The pages without the header and footer lines repeated on most of them (page numbers too)."""
    pages = [[line.strip() for line in text.splitlines() if line.strip()] for text in texts]
    shapes = Counter(shape for lines in pages for shape in {_shape(line) for line in _edges(lines)})
    running = {s for s, n in shapes.items() if n >= _RUNNING_MIN_PAGES and n > len(pages) / 2}
    trimmed = ["\n".join(_trimmed(lines, running)) for lines in pages]
    return trimmed if any(trimmed) else texts  # pages that are all alike are content, not chrome


def _edges(lines: list[str]) -> list[str]:
    return lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]


def _shape(line: str) -> str:
    """A line with its numbers blanked, so "Page 3 of 9" and "Page 4 of 9" are the same line."""
    return _DIGITS.sub("#", " ".join(line.lower().split()))


def _trimmed(lines: list[str], running: set[str]) -> list[str]:
    """`lines` without running lines at its top and bottom edges (the same words mid-page stay)."""
    start, end = 0, len(lines)
    while start < min(_EDGE_LINES, end) and _shape(lines[start]) in running:
        start += 1
    while end > max(start, len(lines) - _EDGE_LINES) and _shape(lines[end - 1]) in running:
        end -= 1
    return lines[start:end]


def _paragraphs(text: str) -> list[str]:
    """Join a page's visual lines into paragraphs, undoing end-of-line hyphenation."""
    lines = [line.strip() for line in text.translate(_LIGATURES).splitlines()]
    width = _usual_width(lines)
    paragraphs: list[str] = []
    current: list[str] = []
    for line, following in pairwise([*lines, ""]):
        if line:
            current.append(line)
        if current and _ends_paragraph(line, following, width):
            paragraphs.append(_join(current))
            current = []
    return paragraphs


def _ends_paragraph(line: str, following: str, width: int) -> bool:
    """Guess whether a paragraph ends after `line`, from line lengths alone."""
    if not line or not following:
        return True
    if _HYPHEN_END.search(line):
        return False
    # A sentence end with room left for the next word means the writer broke the line.
    next_word_fits = len(line) + 1 + len(following.split(maxsplit=1)[0]) <= width
    return len(line) < _SHORT_LINE * width or (next_word_fits and line.endswith(_SENTENCE_ENDS))


def _usual_width(lines: list[str]) -> int:
    lengths = sorted(len(line) for line in lines if line)
    # The 90th percentile: the wrap width, unmoved by the odd overlong line.
    return lengths[math.ceil(0.9 * (len(lengths) - 1))] if lengths else 0


def _join(lines: list[str]) -> str:
    text = lines[0]
    for line in lines[1:]:
        joins_word = bool(_HYPHEN_END.search(text)) and line[:1].islower()  # "exam-" + "ple" -> "example"
        text = text[:-1] + line if joins_word else f"{text} {line}"
    return text


def _metadata_title(reader: PdfReader) -> str:
    """The document info /Title, unless it is empty, a file name or "Untitled"."""
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken info dictionary only costs us the title
        return ""
    title = " ".join(title.split()) if isinstance(title, str) else ""
    return title if _LETTER.search(title) and not _NO_TITLE.match(title) else ""


def _first_line(texts: list[str]) -> str:
    lines = (line for text in texts for line in text.splitlines())
    return next((line.strip() for line in lines if line.strip()), "")


def _short(exc: Exception) -> str:
    message = str(exc).strip().split("\n")[0] or type(exc).__name__
    return message[:100]


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Mute pypdf's log messages and warnings about the repairs it makes while reading.

    Not thread-safe: it changes process-wide logging and warning state while it runs.
    """
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
