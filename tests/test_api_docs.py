"""`/docs` and `/redoc` offline: every file they load comes from our server, out of the package, on a real server."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from search import Settings
from search.http import create_app
from search.http.docs import ASSETS, ASSETS_URL, STATIC
from search.http.ui import UI, ui_file

from .conftest import ServerThread

ROOT = Path(__file__).resolve().parents[1]
KEY = "docs-test-key-0123456789abcdef"
MIN_BYTES = {"text/javascript": 500_000, "text/css": 100_000, "image/png": 500}  # the real bundles, not stubs
_REFERENCE = re.compile(r"""(?:src|href|spec-url|url:)\s*=?\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("docs")
    with ServerThread(create_app(Settings(index_dir=folder / "ix", cache_dir=model_cache))) as running:
        yield running.url


def referenced(html: str) -> list[str]:
    """Every URL a docs page loads: scripts, styles, the icon, the OpenAPI document."""
    return _REFERENCE.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_another_host(server: str, page: str) -> None:
    response = httpx.get(server + page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?:|//[a-z]", response.text, flags=re.I), "an absolute URL leaves the machine"
    urls = referenced(response.text)
    assert "/openapi.json" in urls and any(url.endswith(".js") for url in urls)
    assert all(url.startswith("/") for url in urls), urls
    assets = [url for url in urls if url.startswith(ASSETS_URL + "/")]
    assert len(assets) == len(urls) - 1, urls  # all but the OpenAPI document come from the package
    for url in assets:
        asset = httpx.get(server + url)
        media_type = ASSETS[url.removeprefix(ASSETS_URL + "/")]
        assert asset.status_code == 200 and asset.headers["content-type"].split(";")[0] == media_type, url
        assert len(asset.content) >= MIN_BYTES[media_type], url
        assert asset.content == (STATIC / url.removeprefix(ASSETS_URL + "/")).read_bytes()
        assert "immutable" in asset.headers["cache-control"], "versioned URLs: browsers keep them"


def test_scripts_travel_gzipped_when_the_browser_accepts_it(server: str) -> None:
    name = next(name for name, media_type in ASSETS.items() if media_type == "text/javascript")
    raw = httpx.get(f"{server}{ASSETS_URL}/{name}", headers={"Accept-Encoding": "identity"})
    zipped = httpx.get(f"{server}{ASSETS_URL}/{name}", headers={"Accept-Encoding": "gzip, deflate"})
    assert "content-encoding" not in raw.headers and zipped.headers["content-encoding"] == "gzip"
    assert raw.content == zipped.content == (STATIC / name).read_bytes()  # httpx undoes the gzip
    assert int(zipped.headers["content-length"]) * 2 < int(raw.headers["content-length"])


@pytest.mark.parametrize("name", ["swagger-ui-5.35.0/LICENSE", "SOURCES.md", "../docs.py", "nothing.js"])
def test_only_the_listed_assets_are_served(server: str, name: str) -> None:
    assert httpx.get(f"{server}{ASSETS_URL}/{name}").status_code == 404


def test_the_assets_need_the_key_the_docs_need(tmp_path: Path, model_cache: Path) -> None:
    name = next(iter(ASSETS))
    for public in (False, True):
        settings = Settings(index_dir=tmp_path / "ix", cache_dir=model_cache, api_keys=KEY, public_docs=public)
        with ServerThread(create_app(settings)) as running, httpx.Client(base_url=running.url) as client:
            for path in ("/docs", "/redoc", f"{ASSETS_URL}/{name}"):
                assert client.get(path).status_code == (200 if public else 401), (path, public)
                assert client.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_the_files_are_the_ones_sources_md_names_with_their_licences() -> None:
    lines = (STATIC / "SOURCES.md").read_text().splitlines()
    listed = {name: digest for digest, name in (line.split() for line in lines if re.match(r"[0-9a-f]{64}  ", line))}
    assert set(listed) == set(ASSETS)
    for name, digest in listed.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
        assert (STATIC / name).with_name("LICENSE").stat().st_size > 1000, name
    for name in (name for name in ASSETS if name.endswith(".js")):
        assert (STATIC / f"{name}.LICENSE.txt").exists(), "the bundled libraries' notices ship beside the bundle"


def test_the_wheel_ships_the_assets(tmp_path: Path) -> None:
    """What `pip install .` installs (not the source tree) holds every asset and the web page, byte for byte."""
    source = tmp_path / "src"
    for part in ("ingest", "indexes", "search"):
        shutil.copytree(ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist", "."]
    subprocess.run(build, cwd=source, check=True, capture_output=True)
    (wheel,) = (source / "dist").glob("semsearch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in ASSETS:
            assert archive.read(f"search/http/static/docs/{name}") == (STATIC / name).read_bytes(), name
        page = [path for path in UI.iterdir() if ui_file(UI, path.name)]  # every file GET /ui/{name} serves
        assert {"index.html", "app.js", "app.css"} <= {path.name for path in page}
        for path in page:
            assert archive.read(f"search/http/static/ui/{path.name}") == path.read_bytes(), path.name
