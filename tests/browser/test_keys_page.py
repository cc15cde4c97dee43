"""API keys in Chromium: the key form after a 401, a refused key, session storage only, a read-only key's page."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from search import Settings
from search.http import create_app
from tests.support.browser import Opener

from ..conftest import DATA, ServerThread
from .ui import nav, results, search, titles, upload_input

RW = "rw-browser-key-0123456789"
RO = "ro-browser-key-0123456789"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, model_cache: Path) -> Iterator[str]:
    """The sample index served behind a read-write and a read-only key."""
    folder = tmp_path_factory.mktemp("browser-keys") / "ix"
    shutil.copytree(sample_index, folder)
    settings = Settings(index_dir=folder, cache_dir=model_cache, api_keys=f"{RW},{RO}:ro")
    with ServerThread(create_app(settings)) as server:
        yield server.url


def enter_key(page: Page, key: str) -> None:
    form = page.locator("#key-form")
    expect(form).to_be_visible()
    form.get_by_label("API key").fill(key)
    form.get_by_role("button", name="Use key").click()


def test_key_form_refuses_a_wrong_key_and_the_right_one_searches(open_page: Opener, keyed: str) -> None:
    page, watch = open_page(keyed)
    watch.allow(401)
    enter_key(page, "not-a-key-0123456789")
    expect(page.get_by_text(re.compile(r"refused", re.I)).first).to_be_visible()
    enter_key(page, RW)
    expect(page.locator("#key-form")).to_be_hidden()
    with page.expect_request(lambda r: r.url.endswith("/search")) as sent:
        search(page, "who invented the printing press")
    assert sent.value.headers.get("authorization") == f"Bearer {RW}"
    expect(titles(page).first).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('semsearch.apiKey')") == RW
    assert page.evaluate("localStorage.length") == 0, "the key is kept for the session only"
    expect(page.get_by_role("button", name="Forget key")).to_be_visible()
    for key in (RW, "not-a-key-0123456789"):
        assert key not in page.url
        assert not [url for url in watch.requests if key in url], "a key in a request URL"

    page.reload()  # the same tab keeps its key
    expect(results(page).first).to_be_visible()
    page.get_by_role("button", name="Forget key").click()
    assert page.evaluate("sessionStorage.getItem('semsearch.apiKey')") is None


def test_a_read_only_key_sees_no_write_controls_and_a_write_gets_the_servers_403(
    open_page: Opener, keyed: str, tmp_path: Path
) -> None:
    with httpx.Client(base_url=keyed, timeout=60, headers={"Authorization": f"Bearer {RO}"}) as client:
        refused = client.post("/documents", files=[("files", ("x.txt", b"x"))])
    assert refused.status_code == 403
    message = refused.json()["error"]["message"]
    page, watch = open_page(keyed)
    watch.allow(401, 403)
    enter_key(page, RO)
    nav(page, "Documents").click()
    expect(page).to_have_url(re.compile(r"[?&]view=documents\b"))
    expect(page.get_by_text("This API key may read this index but not change it")).to_be_visible()
    expect(page.get_by_role("table", name="Documents").get_by_role("row").nth(1)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^Delete "))).to_have_count(0)  # hidden from a reader
    expect(upload_input(page)).to_be_hidden()
    expect(page.get_by_role("button", name="Ingest folder")).to_be_hidden()
    upload_input(page).set_input_files(DATA / "sample" / "coffee-brewing.txt")  # a write anyway: the server says no
    expect(page.get_by_text(message).first).to_be_visible()  # in the error region or the upload results
