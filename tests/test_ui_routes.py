"""The web page's server side on a real server: the page and its files, facets, passages, original files."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from indexes import LocalIndex
from ingest import open_index
from search import Settings
from search.http import create_app
from search.http.originals import content_disposition
from search.http.ui import CSP, UI, ui_file

from .conftest import DATA, ServerThread

KEY = "ui-test-key-0123456789abcdef"
_ASSET = re.compile(r"""(?:src|href)=["'](/ui/[^"']+)["']""")
TEAMS = [
    {"team": "search", "year": 2024, "draft": True},
    {"team": "search", "year": 2025, "draft": False},
    {"team": "infra", "year": 2024, "score": 0.5},
]


def sample(name: str) -> bytes:
    return (DATA / "sample" / name).read_bytes()


def upload(client: httpx.Client, files: list[tuple[str, bytes]], attributes: Any = None, prefix: str = "") -> Any:
    data = {"attributes": json.dumps(attributes)} if attributes is not None else {}
    response = client.post(f"{prefix}/documents", files=[("files", f) for f in files], data=data)
    assert response.status_code == 201, response.text
    return [r["document"] for r in response.json()["data"]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, embedder) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server over an empty index and an index root."""
    tmp = tmp_path_factory.mktemp("ui")
    open_index(tmp / "default", embedder, None)[0].close()
    (tmp / "indexes").mkdir()
    settings = Settings(
        index_dir=tmp / "default",
        cache_dir=model_cache,
        index_root=tmp / "indexes",
    )
    with ServerThread(create_app(settings)) as running:
        yield running.url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def documents(client: httpx.Client) -> dict[str, dict[str, Any]]:
    """Three Markdown notes with attributes, a PDF and an HTML page, in the default index."""
    notes = [(f"note{n}.md", f"# Note {n}\n\nA short note about owls number {n}.".encode()) for n in range(3)]
    uploaded = upload(client, notes, TEAMS)
    uploaded += upload(client, [("water-cycle.pdf", sample("water-cycle.pdf"))])
    uploaded += upload(client, [("printing press.html", sample("printing-press.html"))])
    return {Path(d["path"]).name: d for d in uploaded}


# The page and its files


def test_the_page_loads_its_own_files_with_the_security_headers(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assets = _ASSET.findall(page.text)
    assert "/ui/app.js" in assets and "/ui/app.css" in assets, assets
    for response in [page, *(client.get(url) for url in assets)]:
        assert response.status_code == 200, response.url
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-cache"
        name = response.url.path.removeprefix("/ui/") if response.url.path != "/" else "index.html"
        assert response.content == (UI / name).read_bytes()
    assert "frame-ancestors 'none'" in CSP and "default-src 'self'" in CSP


def test_files_travel_gzipped_when_accepted(client: httpx.Client) -> None:
    raw = client.get("/ui/app.js", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/ui/app.js", headers={"Accept-Encoding": "gzip, br"})
    refused = client.get("/ui/app.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in raw.headers and "content-encoding" not in refused.headers
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    assert raw.content == zipped.content == (UI / "app.js").read_bytes()  # httpx undoes the gzip
    assert int(zipped.headers["content-length"]) < int(raw.headers["content-length"])
    with client.stream("GET", "/ui/app.js", headers={"Accept-Encoding": "gzip"}) as response:
        assert gzip.decompress(b"".join(response.iter_raw())) == raw.content  # the bytes sent are gzip indeed


def test_an_unchanged_file_is_a_304(client: httpx.Client) -> None:
    for path in ("/", "/ui/app.css"):
        first = client.get(path)
        tag = first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
        assert client.get(path, headers={"If-None-Match": tag.removeprefix("W/")}).status_code == 304
        assert client.get(path, headers={"If-None-Match": 'W/"other"'}).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/ui/nothing.js", "/ui/..", "/ui/%2E%2E", "/ui/../ui.py", "/ui/..%2Fui.py", "/ui/%2e%2e%2fdocs.py", "/ui/.x.js"],
)
def test_only_files_of_the_page_are_served(server: str, path: str) -> None:
    parts = urlsplit(server)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    try:
        connection.request("GET", path)  # sent as written: no client tidies the dots away
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 404, (path, body)
    assert b"def " not in body and json.loads(body)["error"]["type"] == "not_found"


def test_a_name_is_one_file_in_the_folder(tmp_path: Path) -> None:
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "app.js").write_text("export {};")
    (tmp_path / "secret.js").write_text("no")
    (tmp_path / "ui" / "link.js").symlink_to(tmp_path / "secret.js")
    assert ui_file(tmp_path / "ui", "app.js") == tmp_path / "ui" / "app.js"
    for name in ("link.js", "../secret.js", "..", "app.py", "missing.js", ".app.js", "sub/app.js"):
        assert ui_file(tmp_path / "ui", name) is None, name


# Facets


def test_facets_count_documents_by_type_and_attribute(client: httpx.Client, documents: dict[str, Any]) -> None:
    facets = client.get("/facets").json()
    assert facets["object"] == "facets" and facets["documents"] == len(documents) == 5
    assert facets["types"] == [
        {"value": "markdown", "documents": 3},
        {"value": "html", "documents": 1},
        {"value": "pdf", "documents": 1},
    ]
    by_key = {a["key"]: a for a in facets["attributes"]}
    assert [a["key"] for a in facets["attributes"]] == ["team", "year", "draft", "score"]  # most documents first
    assert by_key["team"] == {
        "key": "team",
        "values": [{"value": "search", "documents": 2}, {"value": "infra", "documents": 1}],
        "more": False,
    }
    assert by_key["year"]["values"] == [{"value": 2024, "documents": 2}, {"value": 2025, "documents": 1}]
    assert [type(v["value"]) for v in by_key["year"]["values"]] == [int, int]
    assert by_key["draft"]["values"] == [{"value": False, "documents": 1}, {"value": True, "documents": 1}]
    assert all(type(v["value"]) is bool for v in by_key["draft"]["values"])
    assert by_key["score"]["values"] == [{"value": 0.5, "documents": 1}]


def test_facets_keep_the_50_most_frequent_keys_and_values(client: httpx.Client) -> None:
    assert client.post("/indexes", json={"name": "many"}).status_code == 201
    empty = client.get("/indexes/many/facets").json()
    assert empty == {"object": "facets", "documents": 0, "types": [], "attributes": [], "more_keys": False}
    for start in (0, 20, 40):
        names = [(f"n{n}.txt", f"Note {n} about a heron.".encode()) for n in range(start, start + 20)]
        upload(client, names, [{"n": n, f"k{n:02}": "x"} for n in range(start, start + 20)], "/indexes/many")
    facets = client.get("/indexes/many/facets").json()
    keys = [a["key"] for a in facets["attributes"]]
    assert facets["documents"] == 60 and len(keys) == 50 and facets["more_keys"] is True  # 61 keys in all
    assert keys == ["n"] + [f"k{n:02}" for n in range(49)]  # 60 documents have n, one each k..: then by name
    n = facets["attributes"][0]
    assert len(n["values"]) == 50 and n["more"] is True and n["values"][0] == {"value": 0, "documents": 1}
    assert facets["attributes"][1] == {"key": "k00", "values": [{"value": "x", "documents": 1}], "more": False}


def test_facets_follow_every_change_of_the_index(client: httpx.Client) -> None:
    """Facets are counted once per generation: an upload, an attribute edit and a delete each show at once."""
    assert client.post("/indexes", json={"name": "changing"}).status_code == 201
    (note,) = upload(client, [("heron.txt", b"A note about a heron.")], [{"team": "birds"}], "/indexes/changing")

    def teams() -> list[Any]:
        facets = client.get("/indexes/changing/facets").json()
        return [a["values"] for a in facets["attributes"] if a["key"] == "team"]

    assert teams() == [[{"value": "birds", "documents": 1}]]
    patched = client.patch(f"/indexes/changing/documents/{note['id']}", json={"attributes": {"team": "fish"}})
    assert patched.status_code == 200, patched.text
    assert teams() == [[{"value": "fish", "documents": 1}]]
    assert client.delete(f"/indexes/changing/documents/{note['id']}").status_code == 200
    assert teams() == []


def test_the_reader_caps_keys_and_values(server: str, documents: dict[str, Any], client: httpx.Client) -> None:
    folder = Path(client.get("/stats").json()["index"])
    index = LocalIndex.open(folder)
    try:
        with index.read() as reader:
            facets = reader.facets(limit=2)
    finally:
        index.close()
    assert [a.key for a in facets.attributes] == ["team", "year"]
    assert [len(a.values) for a in facets.attributes] == [2, 2] and [a.more for a in facets.attributes] == [
        False,
        False,
    ]
    assert [t.value for t in facets.types] == ["markdown", "html", "pdf"]


# Passages and original files


def test_passages_come_in_document_order(client: httpx.Client, documents: dict[str, Any]) -> None:
    pdf = documents["water-cycle.pdf"]
    body = client.get(f"/documents/{pdf['id']}/passages").json()
    assert body["object"] == "list" and body["document"] == client.get(f"/documents/{pdf['id']}").json()
    passages = body["data"]
    assert len(passages) == pdf["chunks"] >= 3
    pages = [p["page"] for p in passages]
    assert pages == sorted(pages) and pages[0] == 1 and pages[-1] == pdf["pages"]
    hits = client.post("/search", json={"query": "evaporation", "k": 50, "filters": _path(pdf)}).json()["results"]
    assert hits and all(h["chunk_id"] in {p["chunk_id"] for p in passages} for h in hits)
    texts = {p["chunk_id"]: p["text"] for p in passages}
    assert all(texts[h["chunk_id"]] == h["text"] for h in hits)
    assert client.get("/documents/999999/passages").status_code == 404


def test_a_pdf_is_sent_inline_anything_else_as_a_sandboxed_download(
    client: httpx.Client, documents: dict[str, Any]
) -> None:
    pdf = client.get(f"/documents/{documents['water-cycle.pdf']['id']}/file")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline;") and pdf.content == sample("water-cycle.pdf")
    assert pdf.headers["content-length"] == str(documents["water-cycle.pdf"]["size"])  # the size checked
    html = client.get(f"/documents/{documents['printing press.html']['id']}/file")
    assert html.status_code == 200 and html.content == sample("printing-press.html")
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-security-policy"] == "sandbox" and html.headers["x-content-type-options"] == "nosniff"
    assert html.headers["content-disposition"] == (
        "attachment; filename=\"printing press.html\"; filename*=UTF-8''printing%20press.html"
    )


def test_any_file_name_survives_content_disposition() -> None:
    header = content_disposition("attachment", 'résumé "final"\\%.html')
    assert header == (
        "attachment; filename=\"r_sum_ _final___.html\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%5C%25.html"
    )
    assert header.isascii()


def test_a_file_uploaded_with_attributes_downloads_after_they_change(
    client: httpx.Client, documents: dict[str, Any]
) -> None:
    note = documents["note0.md"]
    assert client.get(f"/documents/{note['id']}/file").content.startswith(b"# Note 0")
    assert client.patch(f"/documents/{note['id']}", json={"attributes": {"team": "x"}}).status_code == 200
    assert client.get(f"/documents/{note['id']}/file").status_code == 200
    assert client.patch(f"/documents/{note['id']}", json={"attributes": TEAMS[0]}).status_code == 200


def test_a_deleted_file_is_a_404_and_a_changed_one_a_409(client: httpx.Client) -> None:
    assert client.post("/indexes", json={"name": "scratch"}).status_code == 201
    files = [(f"{n}.txt", f"Text {n} about rivers.".encode()) for n in ("gone", "changed", "samesize")]
    gone, changed, same_size = upload(client, files, None, "/indexes/scratch")
    Path(gone["path"]).unlink()
    response = client.get(f"/indexes/scratch/documents/{gone['id']}/file")
    assert response.status_code == 404 and gone["path"] in response.json()["error"]["message"]
    Path(changed["path"]).write_bytes(b"Other text, longer than before.")
    response = client.get(f"/indexes/scratch/documents/{changed['id']}/file")
    assert response.status_code == 409 and "re-ingest" in response.json()["error"]["message"]
    assert changed["path"] in response.json()["error"]["message"]
    path = Path(same_size["path"])
    stat = path.stat()
    path.write_bytes(path.read_bytes().upper())  # same size, other bytes
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert client.get(f"/indexes/scratch/documents/{same_size['id']}/file").status_code == 409
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the size and time ingest recorded: trusted as
    response = client.get(f"/indexes/scratch/documents/{same_size['id']}/file")  # ingest trusts them, unread
    assert response.status_code == 200 and response.content == b"TEXT SAMESIZE ABOUT RIVERS."


def _path(document: dict[str, Any]) -> dict[str, str]:
    return {"type": "eq", "key": "path", "value": document["path"]}


# Keys


def test_the_page_needs_no_key_its_data_does(tmp_path: Path, model_cache: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    open_index(tmp_path / "ix", embedder, None)[0].close()
    settings = Settings(index_dir=tmp_path / "ix", cache_dir=model_cache, api_keys=KEY)
    with ServerThread(create_app(settings)) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        for path in ("/", "/ui/app.js", "/ui/app.css"):
            assert client.get(path).status_code == 200, path
        for path in ("/facets", "/documents/1/passages", "/documents/1/file", "/indexes/x/facets"):
            assert client.get(path).status_code == 401, path
        keyed = {"Authorization": f"Bearer {KEY}"}
        assert client.get("/facets", headers=keyed).json()["documents"] == 0
        assert client.get("/documents/1/passages", headers=keyed).status_code == 404
        assert client.get("/documents/1/file", headers=keyed).status_code == 404
