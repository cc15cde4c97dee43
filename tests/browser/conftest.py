"""Browser fixtures: one Chromium per session, a fresh context per page, and the served sample library.

Every page a test opens is watched: a console error, an uncaught exception, a failed request, an HTTP error
the test did not `allow`, or any request to a host other than 127.0.0.1 (all refused) fails the test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from search import Settings
from search.http import create_app
from tests.support.browser import Opener, Watch, launch, no_running_loop
from tests.support.openai_sim import create_simulator
from tests.support.openai_sim_state import SimulatorConfig

from ..conftest import ServerThread

SIM_KEY = "sk-browser-test"
CHAT_MODEL = "openai/gpt-4o-mini"
# A busy machine (two cores shared by all) may take seconds to run ReDoc's bundle: waits are generous, never sleeps.
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)
# Attributes given to some sample documents, so the page offers them as filters.
TEAMS = {"printing-press.html": "history", "roman-aqueducts.rst": "history", "water-cycle.pdf": "science"}


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright for this package's tests only: while it lives, the main thread counts as inside its event loop
    (asyncio.run and anyio's test runner refuse to start), so it stops before the rest of the suite runs."""
    no_running_loop()
    with sync_playwright() as driver:
        yield driver
    no_running_loop()


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Opener]:
    """`page, watch = open_page(url, **context_options)`: a new context (fresh storage), watched, at `url`."""
    opened: list[tuple[BrowserContext, Watch]] = []

    def open_(url: str, **options: Any) -> tuple[Page, Watch]:
        context = browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
        context.set_default_timeout(TIMEOUT_MS)
        watch = Watch()
        context.route("**/*", watch.route)
        opened.append((context, watch))
        page = context.new_page()
        watch.attach(page)
        page.goto(url)
        return page, watch

    yield open_
    for context, _ in opened:
        context.close()
    problems = [problem for _, watch in opened for problem in watch.problems()]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="package")
def sim() -> Iterator[ServerThread]:
    """The OpenAI simulator as the chat model: answers stream word by word."""
    with ServerThread(create_simulator(SimulatorConfig(api_key=SIM_KEY))) as server:
        yield server


def chat_settings(index_dir: Path, model_cache: Path, sim: ServerThread, **more: Any) -> Settings:
    """A server's settings with the simulator as its chat model (embeddings stay local)."""
    return Settings(
        index_dir=index_dir,
        cache_dir=model_cache,
        openai_api_key=SIM_KEY,
        openai_base_url=f"{sim.url}/v1",
        chat_model=CHAT_MODEL,
        **more,
    )


def copy_index(source: Path, folder: Path) -> Path:
    """A private copy of a built index, so a server may write to it."""
    shutil.copytree(source, folder)
    return folder


@dataclass(frozen=True)
class Library:
    """A served index and its documents (as GET /documents lists them) by file name."""

    server: ServerThread
    documents: dict[str, dict[str, Any]]

    @property
    def url(self) -> str:
        return self.server.url

    def id_of(self, name: str) -> int:
        return int(self.documents[name]["id"])


def documents_by_name(url: str, headers: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
        listing = client.get("/documents", params={"limit": 100}).json()["data"]
    return {Path(d["path"]).name: d for d in listing}


def set_teams(url: str) -> dict[str, dict[str, Any]]:
    """Attributes on some documents through the API; then every document by file name."""
    ids = {name: d["id"] for name, d in documents_by_name(url).items()}
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, team in TEAMS.items():
            client.patch(f"/documents/{ids[name]}", json={"attributes": {"team": team}}).raise_for_status()
    return documents_by_name(url)


@pytest.fixture(scope="package")
def library(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path, model_cache: Path, sim: ServerThread
) -> Iterator[Library]:
    """The sample folder served, with the simulator as chat model; tests only read it."""
    folder = copy_index(sample_index, tmp_path_factory.mktemp("browser-library") / "ix")
    with ServerThread(create_app(chat_settings(folder, model_cache, sim))) as server:
        yield Library(server, set_teams(server.url))
