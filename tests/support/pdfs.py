"""Small PDFs written with pypdf for tests: text pages, image-only pages, encrypted and empty files."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

__all__ = ["IMAGE_ONLY", "pdf_bytes"]

# One grey pixel drawn as an inline image: a page with an image and no text at all.
IMAGE_ONLY = "q 200 0 0 200 72 500 cm BI /W 1 /H 1 /CS /G /BPC 8 ID \x80 EI Q"


def pdf_bytes(pages: Sequence[Sequence[str] | str], *, password: str | None = None) -> bytes:
    """A PDF with one page per item: a list of text lines (Helvetica, top to bottom) or raw page operators."""
    writer = PdfWriter()
    for page_content in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): _helvetica()})
        stream = DecodedStreamObject()
        ops = page_content if isinstance(page_content, str) else _text_operators(page_content)
        stream.set_data(ops.encode("latin-1"))
        page.replace_contents(stream)
    if password is not None:
        writer.encrypt(password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _helvetica() -> DictionaryObject:
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }
    )
    return DictionaryObject({NameObject("/F1"): font})


def _text_operators(lines: Sequence[str]) -> str:
    escaped = (line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines)
    shown = "\n".join(f"({line}) Tj T*" for line in escaped)
    return f"BT /F1 11 Tf 14 TL 72 740 Td\n{shown}\nET"
