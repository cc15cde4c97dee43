"""/docs and /redoc render in Chromium with every request off 127.0.0.1 refused (and none attempted)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.browser import Opener

from .conftest import Library


def test_swagger_ui_renders_the_operations_offline(open_page: Opener, library: Library) -> None:
    page, watch = open_page(f"{library.url}/docs")
    operation = page.locator(".opblock").filter(has_text="/search").first
    expect(operation).to_be_visible()
    assert page.locator(".opblock").count() > 10
    operation.locator(".opblock-summary").first.click()  # expands, with its request body schema
    expect(operation.get_by_role("button", name="Try it out")).to_be_visible()
    assert watch.external == []


def test_redoc_renders_offline(open_page: Opener, library: Library) -> None:
    page, watch = open_page(f"{library.url}/redoc")
    expect(page.locator("h1").filter(has_text="semsearch").first).to_be_visible()
    expect(page.get_by_text("/search", exact=False).first).to_be_attached()
    assert watch.external == []
