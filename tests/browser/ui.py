"""The page's controls as the contract (notes: issue13-design) names them: roles and accessible names."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect


def search_box(page: Page) -> Locator:
    return page.get_by_role("searchbox", name="Search query")


def results(page: Page) -> Locator:
    """The result items, in rank order."""
    return page.get_by_role("list", name="Results").locator("li.result")


def titles(page: Page) -> Locator:
    return results(page).locator("a.result-title")


def search(page: Page, query: str) -> None:
    """Type a query and press the Search button; wait until the URL carries it."""
    search_box(page).fill(query)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(re.compile(r"[?&]q=" + re.escape(query.split()[0])))


def choose(select: Locator, text: str) -> str:
    """Select the first option whose label contains `text` (labels may add counts); its value."""
    expect(select.locator("option", has_text=text).first).to_be_attached()
    labels = select.locator("option").all_inner_texts()
    index = next(i for i, label in enumerate(labels) if text in label)
    select.select_option(index=index)
    return str(select.input_value())


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Views").get_by_role("link", name=name, exact=True)


def upload_input(page: Page) -> Locator:
    return page.get_by_label("Upload files")


def upload_results(page: Page) -> Locator:
    return page.get_by_role("list", name="Upload results").locator("li")


def error(page: Page) -> Locator:
    return page.locator("#error")


def path_names(page: Page) -> list[str]:
    """The file names of the results' paths (the last segment of .result-path)."""
    return [re.split(r"[\\/]", text.strip())[-1] for text in results(page).locator(".result-path").all_inner_texts()]


def expect_only(page: Page, path: re.Pattern[str]) -> None:
    """Wait until there are results and every result's path matches `path` (earlier results may still be shown)."""
    expect(results(page).first).to_be_visible()
    expect(results(page).filter(has_not=page.locator(".result-path", has_text=path))).to_have_count(0)
