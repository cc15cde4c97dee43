"""Debian's Chromium driven by Playwright's sync API: launch rules, a watch on what a page does, screenshots.

Playwright never downloads a browser here: it is given /usr/bin/chromium. Without that binary the browser
tests skip, unless SEMSEARCH_REQUIRE_BROWSER=1 (CI) makes them fail. Both variables are read at import,
before the suite's `clean_environ` fixture removes every SEMSEARCH_* variable.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, Response, Route

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("SEMSEARCH_REQUIRE_BROWSER") == "1"
SAVE_SCREENSHOTS = os.environ.get("SEMSEARCH_SCREENSHOTS") == "1"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"  # committed, for the README
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1"}
WEB_SCHEMES = {"http", "https", "ws", "wss"}
_FAILED_LOAD = re.compile(r"status of (\d{3})")


def launch(playwright: Playwright) -> Browser:
    """Headless Chromium from the system; a missing binary skips, or fails when the browser is required."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the browser tests"
        if REQUIRE_BROWSER:
            pytest.fail(f"SEMSEARCH_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)


def no_running_loop() -> None:
    """Playwright's sync API drives its own event loop: it cannot run inside another one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("the browser tests use Playwright's sync API, which cannot run inside an asyncio loop")


@dataclass
class Watch:
    """What a page did wrong: console errors, uncaught exceptions, failed or refused requests, requests off the host.

    HTTP errors a test provokes on purpose (a 401 before the key is entered) are declared with `allow`.
    """

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    allowed: set[int] = field(default_factory=set)

    def allow(self, *statuses: int) -> None:
        """Responses with these statuses (and the console lines Chromium logs for them) are expected."""
        self.allowed.update(statuses)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("request", lambda request: self.requests.append(request.url))

    def route(self, route: Route) -> None:
        """Let requests to the test server and the browser's own (its PDF viewer) through; refuse other hosts."""
        url = route.request.url
        parts = urlsplit(url)
        if parts.hostname in LOCAL_HOSTS or parts.scheme not in WEB_SCHEMES:  # chrome:// is the browser's own
            route.continue_()
        else:
            self.external.append(url)
            route.abort("blockedbyclient")

    def problems(self) -> list[str]:
        """Everything wrong that was not allowed, in words."""
        return [
            *(f"console error: {text}" for text in self.console_errors),
            *(f"uncaught: {text}" for text in self.page_errors),
            *(f"request failed: {text}" for text in self.failed_requests),
            *(f"HTTP error: {text}" for text in self.error_responses),
            *(f"request off the host: {url}" for url in self.external),
        ]

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = _FAILED_LOAD.search(message.text)
        if status is None or int(status.group(1)) not in self.allowed:
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure and urlsplit(request.url).hostname in LOCAL_HOSTS:
            self.failed_requests.append(f"{request.method} {request.url}: {failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and response.status not in self.allowed:
            self.error_responses.append(f"{response.request.method} {response.url} -> {response.status}")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (fails on anything that is not a PNG)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def screenshot(page: Page, name: str, folder: Path, *, max_bytes: int = 300_000) -> Path:
    """The viewport as `folder/NAME.png` (and tests/screenshots/NAME.png when SEMSEARCH_SCREENSHOTS=1)."""
    viewport = page.viewport_size
    assert viewport is not None
    data = page.screenshot(path=folder / f"{name}.png", animations="disabled", caret="hide")
    assert png_size(data) == (viewport["width"], viewport["height"])
    assert len(data) < max_bytes, f"{name}.png is {len(data)} bytes"
    if SAVE_SCREENSHOTS:
        SCREENSHOTS.mkdir(exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(data)
    return folder / f"{name}.png"


def no_horizontal_scroll(page: Page) -> int:
    """The document's scroll width, asserted to fit the viewport."""
    viewport = page.viewport_size
    assert viewport is not None
    width = int(page.evaluate("document.documentElement.scrollWidth"))
    assert width <= viewport["width"], f"{page.url}: the page is {width}px wide in a {viewport['width']}px viewport"
    return width


Opener = Callable[..., tuple[Page, Watch]]
