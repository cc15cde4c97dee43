"""Acceptance fixes of the page in Chromium: a missing document, keys on a shared link, Load more's focus, the
empty index's Ask view, many attribute filters, one folder listed once, an unknown index named in words."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from ingest import Folders, ingest, open_index
from search import Settings
from search.http import create_app
from tests.support.browser import Opener

from ..conftest import ServerThread
from .conftest import Library, documents_by_name
from .ui import error, titles


def test_a_missing_document_says_not_found_and_links_back(open_page: Opener, library: Library) -> None:
    page, watch = open_page(f"{library.url}/?view=document&id=99999")
    watch.allow(404)
    expect(page.locator("#document-heading")).to_have_text("Document not found")
    expect(error(page)).to_contain_text("99999")
    page.get_by_role("link", name="Back to search").click()
    expect(page).to_have_url(f"{library.url}/")


def test_arrow_down_on_a_freshly_opened_search_focuses_the_first_result(open_page: Opener, library: Library) -> None:
    page, _ = open_page(f"{library.url}/?q=printing+press")
    expect(titles(page).first).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(titles(page).first).to_be_focused()
    page.keyboard.press("j")
    expect(titles(page).nth(1)).to_be_focused()


def test_ask_on_an_empty_index_shows_only_the_empty_state(
    open_page: Opener, tmp_path: Path, model_cache: Path, embedder: Any
) -> None:
    open_index(tmp_path / "ix", embedder, None)[0].close()
    with ServerThread(create_app(Settings(index_dir=tmp_path / "ix", cache_dir=model_cache))) as server:
        page, watch = open_page(f"{server.url}/?view=ask&q=hello")
        expect(page.locator("#view-ask code", has_text="semsearch ingest")).to_be_visible()
        expect(page.locator("#answer-box")).to_be_hidden()
        expect(page.locator("#status")).to_have_text("")
        assert not [url for url in watch.requests if url.endswith("/ask")]


def test_load_more_by_keyboard_focuses_the_first_new_row(
    open_page: Opener, tmp_path: Path, model_cache: Path, embedder: Any
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    for n in range(55):
        (notes / f"note-{n:02d}.txt").write_text(f"Note {n}\n\nThe heron number {n} waded at dawn.\n")
    index, chunking = open_index(tmp_path / "ix", embedder, None)
    assert index is not None
    ingest(index, embedder, Folders([notes]), chunking=chunking)
    index.close()
    with ServerThread(create_app(Settings(index_dir=tmp_path / "ix", cache_dir=model_cache))) as server:
        page, _ = open_page(f"{server.url}/?view=documents")
        more = page.get_by_role("button", name="Load more")
        more.focus()
        page.keyboard.press("Enter")
        rows = page.get_by_role("table", name="Documents").locator("tbody tr")
        expect(rows).to_have_count(55)
        expect(rows.nth(50).get_by_role("link")).to_be_focused()


def test_many_attributes_wait_behind_more_filters(
    open_page: Opener, tmp_path: Path, sample_index: Path, model_cache: Path
) -> None:
    shutil.copytree(sample_index, tmp_path / "ix")
    with ServerThread(create_app(Settings(index_dir=tmp_path / "ix", cache_dir=model_cache))) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for n, doc in enumerate(documents_by_name(server.url).values()):
                attributes = {f"key{n}{k}": f"value{n}{k}" for k in range(6)}
                client.patch(f"/documents/{doc['id']}", json={"attributes": attributes}).raise_for_status()
            keys = len(client.get("/facets").json()["attributes"])
        page, _ = open_page(f"{server.url}/?q=printing+press")
        expect(titles(page).first).to_be_visible()
        filters = page.locator("#attribute-filters")
        expect(filters.locator("select:visible")).to_have_count(4)
        expect(filters.locator("summary")).to_have_text(f"More filters ({keys - 4})")
        hidden = filters.locator("details select").first
        key, value = hidden.get_attribute("name"), hidden.locator("option").nth(1).get_attribute("value")
        page.goto(f"{server.url}/?q=printing+press&attr.{key}={value}")
        expect(page.get_by_label(str(key), exact=True)).to_be_visible()
        expect(page.get_by_label(str(key), exact=True)).to_have_value(str(value))


def test_one_folder_is_listed_once_and_an_unknown_index_is_named(
    open_page: Opener, tmp_path: Path, sample_index: Path, model_cache: Path
) -> None:
    for name in ("main", "other"):
        shutil.copytree(sample_index, tmp_path / "root" / name)
    settings = Settings(index_dir=tmp_path / "root" / "main", cache_dir=model_cache, index_root=tmp_path / "root")
    with ServerThread(create_app(settings)) as server:
        page, watch = open_page(f"{server.url}/?index=nope")
        watch.allow(404)
        expect(error(page)).to_contain_text("There is no index named “nope” on this server")
        picker = page.get_by_role("combobox", name="Index")
        expect(picker.locator("option")).to_have_text([re.compile("^default"), re.compile("^other")])
        expect(picker).to_have_value("default")
        error(page).get_by_role("link", name="other").click()
        expect(page).to_have_url(re.compile(r"[?&]index=other\b"))
        expect(error(page)).to_be_hidden()
