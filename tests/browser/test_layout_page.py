"""The page at 1280 and 360 px, light and dark: no horizontal scroll, a dark background, and the screenshots.

The screenshots always go to tmp_path (checked: PNGs of the viewport's size, under 300 KB); with
SEMSEARCH_SCREENSHOTS=1 they are also written to tests/screenshots/ for the README.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Opener, no_horizontal_scroll, screenshot
from tests.support.openai_sim import reconfigure

from ..conftest import ServerThread
from .conftest import SIM_KEY, Library
from .ui import results

SIZES = {1280: 800, 360: 740}
ANSWER = "Johannes Gutenberg built a printing press with movable metal type around 1440 [1]."


def show_search(page: Page, url: str) -> None:
    page.goto(f"{url}/?q=who+invented+the+printing+press")
    expect(results(page).nth(2)).to_be_visible()


def show_ask(page: Page, url: str) -> None:
    page.goto(f"{url}/?view=ask")
    page.get_by_label("Question").fill("Who invented the printing press?")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#answer a.citation").first).to_be_visible()
    expect(page.locator("#answer")).not_to_have_attribute("aria-busy", "true")


def show_documents(page: Page, url: str) -> None:
    page.goto(f"{url}/?view=documents")
    expect(
        page.get_by_role("table", name="Documents").get_by_role("row").filter(has_text="water-cycle.pdf")
    ).to_be_visible()


VIEWS = {"search": show_search, "ask": show_ask, "documents": show_documents}


@pytest.mark.parametrize("width", SIZES)
def test_views_fit_the_width_and_are_photographed(
    open_page: Opener, library: Library, sim: ServerThread, tmp_path: Path, width: int
) -> None:
    page, _ = open_page(f"{library.url}/?view=documents", viewport={"width": width, "height": SIZES[width]})
    for name, show in VIEWS.items():
        reconfigure(sim.app, api_key=SIM_KEY, chat_script=[ANSWER])
        show(page, library.url)
        no_horizontal_scroll(page)
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, f"{name}-{width}", tmp_path)


def luminance(css_colour: str) -> float:
    """The relative luminance (0 black .. 1 white) of an rgb()/rgba() colour."""
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+(?:\.\d+)?", css_colour)[:3])
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def background(page: Page) -> str:
    """The page's background: the body's, or the root element's when the body's is transparent."""
    return str(
        page.evaluate(
            """() => [document.body, document.documentElement].map(e => getComputedStyle(e).backgroundColor)
                     .find(c => c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') || 'rgb(255, 255, 255)'"""
        )
    )


def test_dark_mode_has_a_dark_background_and_light_text(open_page: Opener, library: Library, tmp_path: Path) -> None:
    light, _ = open_page(library.url)
    dark, _ = open_page(library.url, color_scheme="dark")
    show_search(light, library.url)
    show_search(dark, library.url)
    assert luminance(background(light)) > 0.6, background(light)
    assert luminance(background(dark)) < 0.1, background(dark)
    text = str(dark.evaluate("getComputedStyle(document.body).color"))
    assert luminance(text) > 0.5, text
    screenshot(dark, "search-1280-dark", tmp_path)


def test_the_page_and_its_assets_weigh_under_100_kb(open_page: Opener, library: Library) -> None:
    """The contract's budget: the shell and every /ui asset it loads, uncompressed, under 100 KB."""
    page, _ = open_page(library.url)
    expect(page.get_by_role("searchbox", name="Search query")).to_be_visible()
    page.wait_for_load_state("networkidle")
    sizes: list[list[Any]] = page.evaluate(
        """() => [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')]
                 .map(e => [new URL(e.name).pathname, e.decodedBodySize])"""
    )
    shell = {path: size for path, size in sizes if path == "/" or path.startswith("/ui/")}
    assert {"/", "/ui/app.js", "/ui/app.css"} <= set(shell) and all(size > 0 for size in shell.values()), shell
    assert sum(shell.values()) < 100_000, shell
