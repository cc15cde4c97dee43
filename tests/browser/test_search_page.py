"""The search view in Chromium against a served sample index: results, the URL as state, keys, filters."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.support.browser import Opener

from ..conftest import DATA
from .conftest import TEAMS, Library
from .ui import choose, expect_only, path_names, results, search, search_box, titles

QUESTION = "who invented the printing press"


def test_search_shows_the_expected_first_result_and_lives_in_the_url(open_page: Opener, library: Library) -> None:
    page, _ = open_page(library.url)
    search(page, QUESTION)
    expected = library.documents["printing-press.html"]["title"]
    expect(titles(page).first).to_have_text(expected)
    first = results(page).first
    expect(first.locator(".result-snippet mark").first).to_be_visible()
    expect(first.locator(".result-score")).to_have_text(re.compile(r"\d+\s*%"))
    expect(page).to_have_url(re.compile(r"[?&]q=who(\+|%20)invented(\+|%20)the"))

    page.reload()
    expect(search_box(page)).to_have_value(QUESTION)
    expect(titles(page).first).to_have_text(expected)

    search(page, "how do plants turn light into sugar")
    photosynthesis = library.documents["photosynthesis.md"]["title"]
    expect(titles(page).first).to_have_text(photosynthesis)
    page.go_back()
    expect(search_box(page)).to_have_value(QUESTION)
    expect(titles(page).first).to_have_text(expected)
    page.go_forward()
    expect(search_box(page)).to_have_value("how do plants turn light into sugar")
    expect(titles(page).first).to_have_text(photosynthesis)


def test_snippets_are_escaped_text_with_marks(open_page: Opener, library: Library) -> None:
    """Only <mark> survives from a snippet: the sample HTML's markup never becomes elements."""
    page, _ = open_page(f"{library.url}/?q=movable+metal+type")
    expect(results(page).first).to_be_visible()
    tags = page.eval_on_selector_all(
        "li.result .result-snippet *", "nodes => [...new Set(nodes.map(n => n.tagName.toLowerCase()))]"
    )
    assert set(tags) <= {"mark"}, tags


def test_keyboard_slash_focuses_the_box_and_arrows_walk_the_results(open_page: Opener, library: Library) -> None:
    page, _ = open_page(f"{library.url}/?q=water")
    expect(titles(page).nth(1)).to_be_visible()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("/")
    expect(search_box(page)).to_be_focused()
    expect(search_box(page)).to_have_value("water")  # the "/" is not typed into the box
    page.keyboard.press("ArrowDown")
    expect(titles(page).first).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(titles(page).nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(titles(page).first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]view=document\b"))
    expect(page.locator("#document h2")).to_be_visible()


def test_file_type_attribute_and_path_filters_restrict_results(open_page: Opener, library: Library) -> None:
    page, _ = open_page(library.url)
    search_box(page).fill("water")
    value = choose(page.get_by_role("combobox", name="File type"), "pdf")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(rf"[?&]type={value}\b"))
    expect_only(page, re.compile(r"\.pdf$"))

    page.goto(f"{library.url}/?q=water")
    expect(results(page).first).to_be_visible()
    choose(page.get_by_role("combobox", name="team", exact=True), "history")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]attr\.team=history\b"))
    history = sorted(name for name, team in TEAMS.items() if team == "history")
    expect_only(page, re.compile("|".join(re.escape(name) for name in history)))

    prefix = str(DATA / "sample" / "water")
    page.goto(f"{library.url}/?q=water")
    page.get_by_label("Path prefix").fill(prefix)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]path="))
    expect_only(page, re.compile(re.escape(prefix)))
    assert set(path_names(page)) == {"water-cycle.pdf"}


def test_no_results_says_so_and_suggests_a_change(open_page: Opener, library: Library) -> None:
    page, _ = open_page(f"{library.url}/?q=water&type=pdf&attr.team=history")
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile(r"no (results|matches|passages)", re.I))
    expect(status).to_contain_text(re.compile(r"mode|filter", re.I))
    expect(results(page)).to_have_count(0)
