"""The documents view in Chromium: uploads (file input and drop), a server folder's ingest job, deletes."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Dialog, expect

from ingest import open_index
from search import Settings
from search.http import create_app
from tests.support.browser import Opener

from ..conftest import DATA, ServerThread
from .ui import results, search, titles, upload_input, upload_results

FOLDER_FILES = 20


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, embedder: Any) -> Iterator[tuple[str, Path]]:
    """A server with an empty default index and one ingest root holding a folder of 20 files."""
    base = tmp_path_factory.mktemp("browser-documents")
    open_index(base / "ix", embedder, None)[0].close()
    folder = base / "allowed" / "notes"
    shutil.copytree(DATA / "sample", folder)
    for n in range(FOLDER_FILES - len(list(folder.iterdir()))):
        (folder / f"note-{n:02d}.txt").write_text(f"Field note {n}\n\nObservation {n}: the heron waded at dawn {n}.\n")
    settings = Settings(index_dir=base / "ix", cache_dir=model_cache, ingest_roots=(base / "allowed",))
    with ServerThread(create_app(settings)) as server:
        yield server.url, folder


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_upload_by_input_and_drop_then_search_finds_it(
    open_page: Opener, workspace: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = workspace
    page, _ = open_page(f"{url}/?view=documents")
    zeppelin = write(
        tmp_path, "zeppelin-notes.txt", "Zeppelins\n\nA zeppelin is a rigid airship held up by hydrogen cells."
    )
    upload_input(page).set_input_files(zeppelin)
    expect(upload_results(page).filter(has_text="zeppelin-notes.txt")).to_contain_text("added")

    dropped = page.evaluate_handle(
        """() => {
        const data = new DataTransfer();
        data.items.add(new File(['Kites\\n\\nA kite flies on the wind, tethered by a string to the ground.'],
                                'kite-notes.txt', {type: 'text/plain'}));
        return data;
    }"""
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event("#dropzone", event, {"dataTransfer": dropped})
    expect(upload_results(page).filter(has_text="kite-notes.txt")).to_contain_text("added")

    page.goto(url)
    search(page, "rigid airship hydrogen")
    expect(titles(page).first).to_be_visible()
    expect(results(page).first.locator(".result-path")).to_contain_text("zeppelin-notes.txt")
    search(page, "kite tethered by a string")
    expect(results(page).first.locator(".result-path")).to_contain_text("kite-notes.txt")


def test_a_bad_file_is_reported_failed_with_a_reason(open_page: Opener, workspace: tuple[str, Path]) -> None:
    url, _ = workspace
    page, watch = open_page(f"{url}/?view=documents")
    watch.allow(422)  # every file failed: the server answers 422 and the page shows why
    upload_input(page).set_input_files([DATA / "formats" / "empty.txt", DATA / "formats" / "binary.txt"])
    for name, reason in (("empty.txt", "empty file"), ("binary.txt", "binary")):
        expect(upload_results(page).filter(has_text=name)).to_contain_text(re.compile(rf"failed:.*{reason}"))


def test_delete_a_document_after_confirming(open_page: Opener, workspace: tuple[str, Path]) -> None:
    url, _ = workspace
    with httpx.Client(base_url=url, timeout=60) as client:
        files = [("files", ("delete-me.txt", b"Doomed\n\nThis note exists only to be deleted from the page."))]
        created = client.post("/documents", files=files).json()["data"][0]["document"]
    page, _ = open_page(f"{url}/?view=documents")
    button = page.get_by_role("button", name=f"Delete {created['title']}")
    messages: list[str] = []

    def confirm(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    button.click()
    expect(button).to_have_count(0)
    assert messages, "a confirm dialog was shown"
    with httpx.Client(base_url=url, timeout=60) as client:
        assert client.get(f"/documents/{created['id']}").status_code == 404


def test_ingest_a_server_folder_shows_progress_to_completion(open_page: Opener, workspace: tuple[str, Path]) -> None:
    url, folder = workspace
    page, _ = open_page(f"{url}/?view=documents")
    page.get_by_label("Server folder").fill(str(folder))
    page.get_by_role("button", name="Ingest folder").click()
    job = page.get_by_role("list", name="Ingest jobs").locator("li.job").first
    progress = job.get_by_role("progressbar", name=f"Progress of {folder}")
    expect(progress).to_be_visible()
    expect(job).to_contain_text("completed", timeout=120_000)
    expect(progress).to_have_attribute("value", "100")
    with httpx.Client(base_url=url, timeout=60) as client:
        listed = client.get("/documents", params={"path_prefix": str(folder), "limit": 100}).json()["data"]
    assert len(listed) == FOLDER_FILES
    page.reload()
    table = page.get_by_role("table", name="Documents")
    expect(table.get_by_role("row").filter(has_text="note-07.txt")).to_have_count(1)


def test_another_sites_page_cannot_upload(open_page: Opener, workspace: tuple[str, Path]) -> None:
    """A page of another origin posts a multipart upload (a "simple" request, sent without asking): a 403."""
    url, _ = workspace
    elsewhere = FastAPI()
    elsewhere.get("/", response_class=HTMLResponse)(lambda: "<!doctype html><title>Another site</title><p>Hello")
    plant = """async (target) => {
        const form = new FormData();
        form.append('files', new File(['Planted by another site.'], 'planted.txt', {type: 'text/plain'}));
        await fetch(target + '/documents', {method: 'POST', body: form, mode: 'no-cors'});
    }"""
    with ServerThread(elsewhere) as other:
        page, watch = open_page(other.url)
        watch.allow(403)
        with page.expect_response(lambda r: r.url == f"{url}/documents") as answered:
            page.evaluate(plant, url)
        assert answered.value.status == 403
        assert answered.value.request.headers.get("origin") == other.url
    with httpx.Client(base_url=url, timeout=60) as client:
        names = [Path(d["path"]).name for d in client.get("/documents", params={"limit": 100}).json()["data"]]
    assert "planted.txt" not in names
