"""Several indexes and an empty one in Chromium: the index picker, index= in the URL, the teaching empty state."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from ingest import Folders, ingest, open_index
from search import Settings
from search.http import create_app
from tests.support.browser import Opener

from ..conftest import ServerThread
from .ui import choose, nav, path_names, results, search

QUERY = "lava flows from an erupting volcano"


@pytest.fixture(scope="module")
def several(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path, model_cache: Path, embedder: Any
) -> Iterator[str]:
    """The sample index as the default, and an index root holding `geology` (two files)."""
    base = tmp_path_factory.mktemp("browser-indexes")
    shutil.copytree(sample_index, base / "ix")
    notes = base / "notes"
    notes.mkdir()
    (notes / "volcanoes.txt").write_text(
        "Volcanoes\n\nA volcano erupts when magma rises. Basalt lava flows are runny.\n"
    )
    (notes / "glaciers.md").write_text("# Glaciers\n\nGlaciers carve valleys as the ice slowly moves downhill.\n")
    index, chunking = open_index(base / "root" / "geology", embedder, None)
    assert index is not None
    ingest(index, embedder, Folders([notes]), chunking=chunking)
    index.close()
    settings = Settings(index_dir=base / "ix", cache_dir=model_cache, index_root=base / "root")
    with ServerThread(create_app(settings)) as server:
        yield server.url


def test_index_picker_switches_results_and_the_url(open_page: Opener, several: str) -> None:
    page, _ = open_page(several)
    search(page, QUERY)
    expect(results(page).first).to_be_visible()
    assert "volcanoes.txt" not in path_names(page)
    picker = page.get_by_role("combobox", name="Index")
    choose(picker, "geology")
    expect(page).to_have_url(re.compile(r"[?&]index=geology\b"))
    expect(results(page).first.locator(".result-path")).to_contain_text("volcanoes.txt")
    page.reload()
    expect(picker).to_have_value("geology")
    expect(results(page).first.locator(".result-path")).to_contain_text("volcanoes.txt")
    nav(page, "Documents").click()
    expect(page).to_have_url(re.compile(r"[?&]index=geology\b"))
    rows = page.get_by_role("table", name="Documents").get_by_role("row")
    expect(rows.filter(has_text="glaciers.md")).to_have_count(1)
    expect(rows.filter(has_text="printing-press.html")).to_have_count(0)


def test_an_empty_index_teaches_the_ingest_command_and_has_no_picker(
    open_page: Opener, tmp_path: Path, model_cache: Path, embedder: Any
) -> None:
    folder = tmp_path / "fresh-index"
    open_index(folder, embedder, None)[0].close()
    with ServerThread(create_app(Settings(index_dir=folder, cache_dir=model_cache))) as server:
        page, _ = open_page(server.url)
        command = page.locator("code", has_text="semsearch ingest")
        expect(command.first).to_be_visible()
        expect(command.first).to_contain_text(str(folder))
        expect(
            page.locator("main").get_by_role("link", name=re.compile("Documents|upload", re.I)).first
        ).to_be_visible()
        expect(page.get_by_role("combobox", name="Index")).to_have_count(0)


def test_no_index_at_all_says_which_command_to_run(open_page: Opener, tmp_path: Path, model_cache: Path) -> None:
    folder = tmp_path / "never-ingested"
    with ServerThread(create_app(Settings(index_dir=folder, cache_dir=model_cache))) as server:
        page, watch = open_page(server.url)
        watch.allow(404)  # the server's answer for a missing index, which the page shows in words
        expect(page.get_by_text("semsearch ingest").first).to_be_visible()
        expect(page.get_by_text(str(folder)).first).to_be_visible()
