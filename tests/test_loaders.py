from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path

import pytest

from ingest.errors import UnreadableDocument
from ingest.loaders import load
from ingest.records import Block, LoadedDocument

from .support.pdfs import pdf_bytes

DATA = Path(__file__).parent / "data"
FORMATS = DATA / "formats"
SAMPLE = DATA / "sample"
as_root = os.geteuid() == 0


def headings(doc: LoadedDocument) -> list[tuple[int, str]]:
    return [(b.level, b.text) for b in doc.blocks if b.kind == "heading"]


def texts(doc: LoadedDocument) -> list[str]:
    return [b.text for b in doc.blocks if b.kind == "text"]


def full_text(doc: LoadedDocument) -> str:
    return "\n".join(b.text for b in doc.blocks)


def reason(path: Path) -> str:
    with pytest.raises(UnreadableDocument) as error:
        load(path)
    assert error.value.path == str(path)
    return error.value.reason


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


# --- plain text -------------------------------------------------------------------


def test_text_paragraphs_become_blocks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "notes.txt",
        "\n\nFirst line\nsame paragraph  \n\n \n\nSecond\r\n\r\nThird\rline\n",
    )
    doc = load(path)
    assert doc == LoadedDocument(
        str(path),
        "text",
        "First line",
        (Block("First line\nsame paragraph"), Block("Second"), Block("Third\nline")),
    )


def test_legacy_latin1_text_is_decoded() -> None:
    doc = load(FORMATS / "legacy-latin1.txt")
    assert doc.title == "Café notes"
    assert texts(doc)[1] == "The crème brûlée costs £3.50 at the café on the corner.\nIt is served cold."
    assert "\r" not in full_text(doc)


def test_utf16_text_with_bom_is_decoded() -> None:
    doc = load(FORMATS / "utf16-bom.txt")
    assert doc.title == "Über Zürich"
    assert texts(doc) == [
        "Über Zürich",
        "Die Limmat fließt durch die Altstadt.",
        "Grüße aus der Schweiz.",
    ]


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "bom.txt", "\ufeffNaïve title\n\nBody."))
    assert doc.title == "Naïve title"
    assert doc.blocks[0].text == "Naïve title"


def test_cp1252_punctuation_is_decoded(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "quotes.txt", "\x93Smart\x94 quotes \x96 and \x80 signs".encode("latin-1")))
    assert doc.title == "\u201cSmart\u201d quotes \u2013 and \u20ac signs"


def test_long_first_line_title_is_trimmed(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "long.txt", "word " * 100))
    assert len(doc.title) <= 121
    assert doc.title.endswith("word…")


def test_text_without_title_line_uses_the_stem(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "untitled-notes.md", "```\n\n```\n\nplain words"))
    assert doc.title == "untitled-notes"


def test_an_email_is_titled_by_its_subject(tmp_path: Path) -> None:
    mail = (
        "From: Ada <ada@example.org>\nDate: Mon, 3 Jun 2024 09:00 +0000\nSubject: Parking moves\n  to level 2\n\nHi all"
    )
    doc = load(write(tmp_path, "mail.txt", mail))
    assert doc.title == "Parking moves"
    assert doc.blocks[-1] == Block("Hi all")  # the headers stay searchable, as text


def test_headers_without_a_subject_fall_back_to_the_file_name(tmp_path: Path) -> None:
    mbox = "From ada@example.org Mon Jun  3 09:00:00 2024\nFrom: ada@example.org\nTo: ops@example.org\n\nHi"
    assert load(write(tmp_path, "thread.txt", mbox)).title == "thread"
    # One "Name: value" line is a first line like any other.
    assert load(write(tmp_path, "note.txt", "Note: buy milk\n\nand bread")).title == "Note: buy milk"


def test_mostly_utf8_with_one_bad_byte_stays_utf8(tmp_path: Path) -> None:
    data = "Café crème, naïve façade.\n\nÜber Zürich".encode() + b" \xff end"
    doc = load(write(tmp_path, "damaged.txt", data))
    assert doc.title == "Café crème, naïve façade."
    assert doc.blocks[-1] == Block("Über Zürich \ufffd end")


# --- Markdown ---------------------------------------------------------------------


def test_markdown_headings_and_front_matter() -> None:
    doc = load(FORMATS / "guide.md")
    assert doc.type == "markdown"
    assert doc.title == "Field Guide to Tide Pools"
    assert headings(doc) == [
        (1, "Tide Pools"),
        (2, "Safety"),
        (2, "Creatures"),
        (3, "Leave no trace"),
    ]
    assert "Ada Marsh" not in full_text(doc) and "tags:" not in full_text(doc)


def test_markdown_fenced_code_is_one_block_and_not_headings() -> None:
    doc = load(FORMATS / "guide.md")
    code = [b for b in doc.blocks if "seen = " in b.text]
    assert code == [
        Block('# count the animals you saw: this is a comment, not a heading\nseen = {"anemone": 3, "crab": 1}')
    ]


def test_markdown_markup_is_stripped_but_words_kept() -> None:
    doc = load(FORMATS / "guide.md")
    assert texts(doc)[0].endswith("They are home to anemones, sea stars and hermit crabs.")
    assert texts(doc)[1] == ("Read the tide tables before you go, and see\na sketch of a rocky shore for the layout.")


def test_markdown_inline_code_and_identifiers_survive(tmp_path: Path) -> None:
    source = (
        "Call `__init__` or `a*b*c` with `Vec<u8>`; keep snake_case_name, **bold**, _em_,\n"
        "<b>tags</b>, <https://example.org> and ~~gone~~.\n"
    )
    doc = load(write(tmp_path, "code.md", source))
    assert doc.blocks[0].text == (
        "Call __init__ or a*b*c with Vec<u8>; keep snake_case_name, bold, em,\ntags, https://example.org and gone."
    )


def test_markdown_title_falls_back_to_first_h1_then_stem(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "a.md", "## Minor\n\ntext\n\n# Main Title\n\nmore"))
    assert doc.title == "Main Title"
    assert load(write(tmp_path, "b-notes.md", "## Minor\n\ntext")).title == "b-notes"


def test_markdown_setext_thematic_breaks_quotes_and_link_definitions(tmp_path: Path) -> None:
    source = "Big\n===\n\n---\n\n> quoted *text*\n> continues\n\n[home]: https://example.org\n***\nLast\n"
    doc = load(write(tmp_path, "misc.md", source))
    assert doc.blocks == (
        Block("Big", "heading", 1),
        Block("quoted text\ncontinues"),
        Block("Last"),
    )


def test_markdown_atx_closing_hashes_and_hashtags(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "tags.md", "### Closed ###\n#hashtag is text\n"))
    assert doc.blocks == (Block("Closed", "heading", 3), Block("#hashtag is text"))


def test_markdown_lists_tables_and_html_blocks(tmp_path: Path) -> None:
    source = (
        "* **C4 plants** fix carbon\n  first.\n* CAM plants\n  1. open at night\n\n"
        "| Light | Year |\n|---|---|\n| Eddystone | 1759 |\n\n"
        '<div class="note">\n<b>Raw</b> html <!-- hidden -->\n</div>\n\nAfter &amp; done.\n'
    )
    doc = load(write(tmp_path, "lists.md", source))
    assert doc.blocks == (
        Block("* C4 plants fix carbon\nfirst.\n* CAM plants\n  1. open at night"),
        Block("Light | Year\nEddystone | 1759"),
        Block("Raw html"),
        Block("After & done."),
    )


def test_markdown_front_matter_attributes(tmp_path: Path) -> None:
    source = "---\ntitle:   'Spaced'   \nteam: facilities\nyear: 2024\ntags:   [a, b]\n---\nBody\n"
    doc = load(write(tmp_path, "meta.md", source))
    assert doc.title == "Spaced"
    assert doc.attributes == {"title": "Spaced", "team": "facilities", "year": 2024}


# --- reStructuredText -------------------------------------------------------------


def test_rst_sections_levels_and_title() -> None:
    doc = load(FORMATS / "manual.rst")
    assert doc.type == "rst"
    assert doc.title == "Beekeeping Handbook"
    assert headings(doc) == [
        (1, "Beekeeping Handbook"),
        (2, "The Hive"),
        (3, "Inspections"),
        (2, "Harvest"),
    ]


def test_rst_directives_keep_content_and_markup_is_stripped() -> None:
    doc = load(FORMATS / "manual.rst")
    body = texts(doc)
    assert "Keep the entrance reduced during the first weeks so the colony can defend it." in body
    assert "Modern hives use movable frames, following the design popularised by\nLangstroth in 1852." in body
    assert "Inspect every seven to ten days in spring. Use smoke sparingly:" in body
    assert "open the roof\nlift one frame at a time" in body
    assert ".. note" not in full_text(doc) and "https://" not in full_text(doc)


def test_rst_comments_options_transitions_and_footnotes(tmp_path: Path) -> None:
    source = (
        "Intro [1]_ with a :ref:`target`.\n\n.. image:: x.png\n   :alt: a picture\n\n"
        ".. a comment\n\n----------\n\n.. tip:: Inline tip.\n\n.. [1] The footnote.\n"
    )
    doc = load(write(tmp_path, "notes.rst", source))
    assert texts(doc) == ["Intro with a target.", "Inline tip.", "The footnote."]
    assert doc.title == "notes"


def test_rst_literals_field_lists_and_comment_bodies(tmp_path: Path) -> None:
    source = "Use ``__init__`` and ``:ref:`x```.\n\n.. a comment\n   that goes on\n\n:param path: the file to read\n"
    doc = load(write(tmp_path, "api.rst", source))
    assert texts(doc) == ["Use __init__ and :ref:`x`.", ":param path: the file to read"]


# --- HTML -------------------------------------------------------------------------


def test_html_title_headings_and_text() -> None:
    doc = load(FORMATS / "page.html")
    assert doc.type == "html"
    assert doc.title == "Lighthouses & Their Keepers"
    assert headings(doc) == [(1, "Lighthouses"), (2, "The Fresnel lens")]
    assert texts(doc)[:4] == [
        "A lighthouse marks dangerous coasts, reefs and harbour entrances — a beacon for sailors at night.",
        "In 1822 Augustin-Jean Fresnel designed a lens that made lights visible over "
        "20 nautical miles away & used far less oil.",  # &nbsp; collapses too
        "First-order lenses stood taller than a person.",
        "Sixth-order lenses served harbours.",
    ]


def test_html_drops_scripts_styles_and_site_chrome() -> None:
    text = full_text(load(FORMATS / "page.html"))
    for unwanted in (
        "tracking",
        "font-family",
        "About this site",
        "Copyright",
        "JavaScript",
        "document.write",
    ):
        assert unwanted not in text


def test_html_pre_keeps_line_breaks_and_cells_are_blocks() -> None:
    doc = load(FORMATS / "page.html")
    assert "Keeper's log:\n  22:00  lamp lit\n  06:00  lamp out" in texts(doc)
    assert texts(doc)[-2:] == ["Light", "Eddystone"]


def test_html_declared_charset_and_title_fallback(tmp_path: Path) -> None:
    page = '<meta charset="iso-8859-1"><h1>Caf\xe9</h1><p>cr\xe8me &lt;br&gt;</p>'.encode("latin-1")
    doc = load(write(tmp_path, "legacy.htm", page))
    assert doc.title == "Café"
    assert doc.blocks == (Block("Café", "heading", 1), Block("crème <br>"))


def test_html_without_title_or_h1_uses_the_stem(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "fragment.html", "<div>one<br>two</div><svg><title>icon</title></svg>"))
    assert doc.title == "fragment"
    assert doc.blocks == (Block("one two"),)


def test_html_with_only_scripts_has_no_text(tmp_path: Path) -> None:
    assert reason(write(tmp_path, "app.html", "<script>boot()</script><style>p{}</style>")) == "no text content"


def test_malformed_html_is_repaired_as_a_browser_would(tmp_path: Path) -> None:
    # html.parser rejected this page; libxml2 reads `<![bogus[ y ]]>` as a comment, as browsers do.
    doc = load(write(tmp_path, "odd.html", "<p>x <![bogus[ y ]]></p><p>unclosed <b>bold<li>item"))
    assert doc.blocks == (Block("x"), Block("unclosed bold"), Block("item"))


# --- PDF --------------------------------------------------------------------------


def test_pdf_pages_titles_and_paragraphs() -> None:
    doc = load(FORMATS / "report.pdf")
    assert (doc.type, doc.title, doc.pages) == ("pdf", "Quarterly Field Report", 3)
    assert [b.page for b in doc.blocks] == [1, 1, 1, 2, 2, 3]
    assert doc.blocks[1].text.startswith("The survey team spent nine days on the northern glacier")
    assert doc.blocks[3].text.endswith("and dropped sharply after dusk.")
    assert doc.blocks[4].text.startswith("Sediment samples")
    assert all(b.kind == "text" for b in doc.blocks)


def test_pdf_lines_are_joined_and_dehyphenated() -> None:
    doc = load(FORMATS / "report.pdf")
    assert "measuring how far the ice front had retreated" in doc.blocks[1].text
    assert "one example of the new method" in doc.blocks[1].text


def test_pdf_running_headers_footers_and_page_numbers_are_dropped(tmp_path: Path) -> None:
    body = [
        "Tides rise twice a day along the coast.",
        "Rock pools trap water at low tide.",
        "Crabs hide under the weed in daylight.",
        "Anemones close when the water leaves.",
        "Gulls take what the tide leaves behind.",
        "Sand moves with every winter storm.",
    ]
    pages = [["Coastal Survey - Confidential", body[2 * n], body[2 * n + 1], f"Page {n + 1} of 3"] for n in range(3)]
    pages[1].insert(2, "Coastal Survey - Confidential")  # the same words inside a page are text
    doc = load(write(tmp_path, "survey.pdf", pdf_bytes(pages)))
    assert doc.title == "Tides rise twice a day along the coast."
    pages_text = {n: " ".join(b.text for b in doc.blocks if b.page == n) for n in (1, 2, 3)}
    assert pages_text[1] == " ".join(body[:2]) and pages_text[3] == " ".join(body[4:])
    assert pages_text[2].split() == f"{body[2]} Coastal Survey - Confidential {body[3]}".split()


def test_pdf_pages_all_alike_are_kept(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "same.pdf", pdf_bytes([["Same words on every page."]] * 3)))
    assert [b.text for b in doc.blocks] == ["Same words on every page."] * 3


def test_pdf_encrypted_with_empty_password_loads() -> None:
    doc = load(FORMATS / "encrypted-empty-password.pdf")
    # Its metadata title is "Microsoft Word - memo.docx": not a title, so the first line is.
    assert doc.title == "Memo on the library opening hours"
    assert doc.blocks[1] == Block("The reading room now opens at eight in the morning on weekdays.", page=1)


def test_pdf_with_aes_and_empty_password_needs_cryptography() -> None:
    path = FORMATS / "aes-empty-password.pdf"
    if importlib.util.find_spec("cryptography") is None:
        assert reason(path) == "encrypted PDF (AES needs the 'cryptography' package)"
    else:
        assert load(path).title == "Permissions only"


def test_pdf_loading_keeps_pypdf_quiet(caplog: pytest.LogCaptureFixture) -> None:
    level = logging.getLogger("pypdf").level
    with caplog.at_level(logging.DEBUG):
        reason(FORMATS / "corrupt.pdf")
        load(FORMATS / "report.pdf")
    assert [r for r in caplog.records if r.name.startswith("pypdf")] == []
    assert logging.getLogger("pypdf").level == level


# --- bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("empty.txt", "empty file"),
        ("binary.txt", "binary file, not text"),
        ("encrypted.pdf", "encrypted PDF (password required)"),
        ("scanned.pdf", "no extractable text (scanned PDF? OCR it first)"),
    ],
)
def test_unreadable_formats_give_a_reason(name: str, expected: str) -> None:
    assert reason(FORMATS / name) == expected


def test_corrupt_pdf_gives_a_short_reason() -> None:
    text = reason(FORMATS / "corrupt.pdf")
    assert text.startswith("corrupt PDF: ") and len(text) < 120


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("blank.md", " \n\t\n", "empty file"),
        ("blank.pdf", b"", "empty file"),
        ("blank.html", "\n\n", "empty file"),
        ("bom-only.txt", "\ufeff".encode("utf-16"), "empty file"),
        ("only-front-matter.md", "---\ntitle: x\n---\n", "no text content"),
        ("comment.html", "<!-- nothing to see -->", "no text content"),
    ],
)
def test_empty_and_whitespace_files(tmp_path: Path, name: str, content: str | bytes, expected: str) -> None:
    assert reason(write(tmp_path, name, content)) == expected


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    assert reason(write(tmp_path, "spaces.txt", "   \r\n\t \n")) == "empty file"


def test_control_characters_mean_binary(tmp_path: Path) -> None:
    assert reason(write(tmp_path, "dump.rst", bytes(range(1, 32)) * 20)) == "binary file, not text"


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    assert reason(tmp_path / "slides.pptx") == "unsupported file type .pptx"
    assert reason(tmp_path / "missing.md") == "no such file or directory"


@pytest.mark.skipif(as_root, reason="root can read any file")
def test_permission_denied(tmp_path: Path) -> None:
    path = write(tmp_path, "private.md", "# Secret")
    path.chmod(0)
    assert reason(path) == "permission denied"


# --- every file we ship -----------------------------------------------------------

GOOD_FORMATS = [
    "guide.md",
    "manual.rst",
    "page.html",
    "legacy-latin1.txt",
    "utf16-bom.txt",
    "report.pdf",
    "encrypted-empty-password.pdf",
]
LOADABLE = [FORMATS / name for name in GOOD_FORMATS] + sorted(SAMPLE.iterdir())


@pytest.mark.parametrize("path", LOADABLE, ids=lambda p: p.name)
def test_blocks_are_stripped_and_non_empty(path: Path) -> None:
    doc = load(path)
    assert doc.blocks and doc.title
    assert all(b.text and b.text == b.text.strip() for b in doc.blocks)
    assert all(b.kind in {"text", "heading"} and (b.kind == "heading") == (b.level > 0) for b in doc.blocks)


def test_sample_corpus_mixes_formats_with_real_titles() -> None:
    docs = [load(p) for p in sorted(SAMPLE.iterdir())]
    assert 8 <= len(docs) <= 12
    assert {d.type for d in docs} == {"text", "markdown", "rst", "html", "pdf"}
    assert all(d.title != Path(d.path).stem for d in docs)
    assert any(d.type == "pdf" and (d.pages or 0) > 1 for d in docs)


# --- hostile inputs: every parser takes time in proportion to the size --------------------

MB = 1_000_000
# The file (138 s to parse with the old regexes at a third of this size), grown to 1 MB.
ADVERSARIAL = "**a " * 83_000 + "\n" + "_" * 333_000 + "\n" + "[" * 333_000 + "\nlast words\n"
HOSTILE = {
    "adversarial.md": ADVERSARIAL,
    "adversarial.rst": ADVERSARIAL,
    "adversarial.txt": ADVERSARIAL,
    "emphasis.rst": "a " + "*a **a `a <a :a:a " * 55_000 + "last words",
    "long-line.md": "word " * (MB // 5) + "\n\nlast words",
    "deep.html": "<div>" * 200_000 + "<p>last words</p>",
    "malformed.html": "<p>a\n" + "<a\n" * 150_000 + "</p>" + "<b x='" * 50_000 + "<p>last words",
    "unclosed-tags.html": "<svg>" * 1000 + "<body>" * 160_000 + "<p>last words",
}
# Old parsers: html.parser needed 285 s for `"<a\n" * 40_000` and the reST regexes over 20 s for 1 MB of "**a ".
SLOWEST_SECONDS = 30  # what these take here is 0.1-6 s; a parser quadratic in the size takes hours


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_megabyte_parses_in_linear_time(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, HOSTILE[name])
    began = time.perf_counter()
    try:
        words = full_text(load(path))
    except UnreadableDocument as error:
        words = error.reason
    took = time.perf_counter() - began
    assert took < SLOWEST_SECONDS, f"{name} took {took:.1f} s"
    assert "last words" in words or words in ("no text content", "HTML elements nested over 1024 deep")
