"""Documents, ingest jobs, several indexes and watch mode, over a real server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest import open_index
from search import Settings
from search.http import create_app

from .conftest import DATA, ServerThread, free_port


@pytest.fixture
def server(tmp_path: Path, model_cache: Path, embedder, store: str) -> Iterator[tuple[httpx.Client, Path]]:  # type: ignore[no-untyped-def]
    """A server with an empty default index, an index root, and one allowed ingest root; in each store."""
    index, _ = open_index(tmp_path / "default", embedder, None, store=store)
    index.close()
    roots = tmp_path / "allowed"
    shutil.copytree(DATA / "sample", roots / "sample")
    settings = Settings(
        index_dir=tmp_path / "default",
        cache_dir=model_cache,
        index_root=tmp_path / "indexes",
        ingest_roots=(roots,),
        store=store,  # indexes made with POST /indexes
    )
    (tmp_path / "indexes").mkdir()
    with ServerThread(create_app(settings)) as running, httpx.Client(base_url=running.url, timeout=120) as client:
        yield client, tmp_path


def upload(client: httpx.Client, *names: str, attributes: str | None = None, prefix: str = "") -> httpx.Response:
    files = [("files", (name, (DATA / "sample" / name).read_bytes())) for name in names]
    data = {"attributes": attributes} if attributes else {}
    return client.post(f"{prefix}/documents", files=files, data=data)


def test_upload_list_get_patch_delete(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    response = upload(
        client,
        "water-cycle.pdf",
        "printing-press.html",
        "photosynthesis.md",
        attributes='{"team": "science", "year": 2024}',
    )
    assert response.status_code == 201, response.text
    results = response.json()["data"]
    assert [r["status"] for r in results] == ["completed"] * 3
    pdf = results[0]["document"]
    assert (
        pdf["type"] == "pdf"
        and pdf["pages"] == 3
        and pdf["chunks"] >= 3
        and pdf["attributes"] == {"team": "science", "year": 2024}
    )
    again = upload(client, "water-cycle.pdf", attributes='{"team": "science", "year": 2024}').json()["data"][0]
    assert again["duplicate"] and again["document"]["id"] == pdf["id"], "the same content is recognised"
    page = client.get("/documents", params={"limit": 2}).json()
    assert len(page["data"]) == 2 and page["has_more"]
    rest = client.get("/documents", params={"after": page["last_id"]}).json()
    assert len(rest["data"]) == 1 and not rest["has_more"]
    assert [d["type"] for d in client.get("/documents", params={"type": "pdf"}).json()["data"]] == ["pdf"]
    patched = client.patch(f"/documents/{pdf['id']}", json={"attributes": {"team": "hydrology"}}).json()
    assert patched["attributes"] == {"team": "hydrology"} and patched["chunks"] == pdf["chunks"]
    assert client.get(f"/documents/{pdf['id']}").json()["attributes"] == {"team": "hydrology"}
    hits = client.post("/search", json={"query": "evaporation and condensation", "k": 3}).json()["results"]
    assert hits[0]["path"].endswith("water-cycle.pdf")
    assert client.delete(f"/documents/{pdf['id']}").json()["deleted"]
    assert client.get(f"/documents/{pdf['id']}").status_code == 404
    hits = client.post("/search", json={"query": "evaporation and condensation", "k": 3}).json()["results"]
    assert not any(h["path"].endswith("water-cycle.pdf") for h in hits)


def test_bad_uploads_say_what_is_wrong(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    files = [
        ("files", ("notes.docx", b"PK...")),
        ("files", ("empty.md", b"")),
        ("files", ("broken.pdf", (DATA / "formats" / "corrupt.pdf").read_bytes())),
    ]
    response = client.post("/documents", files=files)
    assert response.status_code == 422, "nothing was stored: not a 201"
    error = response.json()["error"]
    assert error["type"] == "invalid_upload" and error["message"].startswith("no file was stored")
    reasons = [d["msg"] for d in error["details"]]
    assert reasons[0].startswith("notes.docx: unsupported file type .docx") and reasons[1] == "empty.md: empty file"
    assert reasons[2].startswith("broken.pdf: corrupt PDF")
    mixed = client.post("/documents", files=[files[0], ("files", ("ok.md", b"# Ok\n\nA note about owls."))])
    assert mixed.status_code == 201, "one file was stored: the per-file results say which"
    assert [r["status"] for r in mixed.json()["data"]] == ["failed", "completed"]
    bad = client.post("/documents", files=[("files", ("a.md", b"# hi\n\nthere"))], data={"attributes": "{not json"})
    assert bad.status_code == 422 and "attributes" in bad.json()["error"]["message"]
    assert client.patch("/documents/1", json={"attributes": {"x": [1, 2]}}).status_code == 422
    for number in ("1180591620717411303424", "NaN", "Infinity"):  # 2^70: no store holds it (Milvus: int64)
        huge = client.post(
            "/documents", files=[("files", ("n.md", b"# n\n\nnumbers"))], data={"attributes": f'{{"n": {number}}}'}
        )
        assert huge.status_code == 422 and "attributes.n: a number between" in huge.json()["error"]["message"], number


def test_ingest_job_runs_to_completion_and_searches_keep_working(server: tuple[httpx.Client, Path]) -> None:
    client, tmp = server
    job = client.post("/ingest", json={"path": str(tmp / "allowed" / "sample")})
    assert job.status_code == 202 and job.json()["status"] in ("queued", "in_progress")
    errors: list[str] = []
    done = threading.Event()

    def search_loop() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as http:
            while not done.is_set():
                response = http.post("/search", json={"query": "printing press", "k": 5})
                if response.status_code != 200:
                    errors.append(response.text)

    thread = threading.Thread(target=search_loop)
    thread.start()
    status = _wait(client, job.json()["id"])
    done.set()
    thread.join()
    assert not errors
    assert status["status"] == "completed" and status["counts"]["ingested"] == 10
    assert status["progress"]["files_done"] == status["progress"]["files_total"] == 10
    assert client.get("/stats").json()["documents"] == 10


def test_ingest_paths_outside_the_allowed_roots_are_refused(server: tuple[httpx.Client, Path]) -> None:
    client, tmp = server
    outside = tmp / "secret"
    outside.mkdir()
    (outside / "s.md").write_text("# secret\n\npasswords")
    (tmp / "allowed" / "escape").symlink_to(outside)
    for path in (str(outside), str(tmp / "allowed" / ".." / "secret"), str(tmp / "allowed" / "escape"), "/etc"):
        response = client.post("/ingest", json={"path": path})
        assert response.status_code == 403, path
        assert response.json()["error"]["message"]
    assert client.post("/ingest", json={"path": str(tmp / "allowed" / "nope")}).status_code == 422


def test_jobs_can_be_cancelled_and_unknown_jobs_are_404(server: tuple[httpx.Client, Path]) -> None:
    client, tmp = server
    many = tmp / "allowed" / "many"
    many.mkdir()
    for n in range(40):
        (many / f"n{n}.txt").write_text(" ".join(f"Note {n} sentence {i}." for i in range(150)))
    job = client.post("/ingest", json={"path": str(many)}).json()
    cancelled = client.delete(f"/jobs/{job['id']}").json()
    assert cancelled["status"] in ("cancelled", "in_progress")
    assert _wait(client, job["id"])["status"] == "cancelled"
    assert client.get("/stats").json()["documents"] == 0, "a cancelled job publishes nothing"
    assert client.get("/jobs/job_nope").status_code == 404


def test_several_indexes(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    created = client.post("/indexes", json={"name": "team-b"})
    assert created.status_code == 201
    assert client.post("/indexes", json={"name": "team-b"}).status_code == 409
    assert client.post("/indexes", json={"name": "Bad Name!"}).status_code == 422
    upload(client, "chess-rules.html", prefix="/indexes/team-b")
    upload(client, "coffee-brewing.txt")
    names = {i["name"]: i for i in client.get("/indexes").json()["data"]}
    assert names["team-b"]["documents"] == 1 and names["default"]["documents"] == 1
    b = client.post("/indexes/team-b/search", json={"query": "how does the bishop move"}).json()["results"]
    assert b and all(h["path"].endswith("chess-rules.html") for h in b)
    default = client.post("/search", json={"query": "how does the bishop move"}).json()["results"]
    assert all(h["path"].endswith("coffee-brewing.txt") for h in default)
    assert client.post("/indexes/nope/search", json={"query": "x"}).status_code == 404


def test_watch_keeps_the_index_in_sync(tmp_path: Path, model_cache: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe alpha note talks about glaciers.")
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache)}
    command = [
        sys.executable,
        "-c",
        "from search.cli.main import main; main()",
        "ingest",
        str(folder),
        "--index",
        str(tmp_path / "ix"),
        "--watch",
        "--interval",
        "0.3",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: _paths(tmp_path / "ix", model_cache) == {"a.md"})
        (folder / "b.md").write_text("# Beta\n\nThe beta note is about volcanoes.")
        _until(lambda: _paths(tmp_path / "ix", model_cache) == {"a.md", "b.md"})
        (folder / "b.md").rename(folder / "c.md")
        _until(lambda: _paths(tmp_path / "ix", model_cache) == {"a.md", "c.md"})
        (folder / "a.md").unlink()
        _until(lambda: _paths(tmp_path / "ix", model_cache) == {"c.md"})
    finally:
        process.terminate()
        process.wait(timeout=30)


def _paths(index_dir: Path, cache: Path) -> set[str]:
    from indexes import LocalIndex

    if not LocalIndex.exists(index_dir):
        return set()
    index = LocalIndex.open(index_dir)
    try:
        with index.read() as reader:
            return {Path(d.record.path).name for d in reader.documents()}
    finally:
        index.close()


def _serve(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`semsearch serve ARGS` in its own process on a free port, once it answers; its process and URL."""
    port = free_port()
    command = [sys.executable, "-c", "from search.cli.main import main; main()", "serve", *args, "--port", str(port)]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    _until(lambda: _answers(f"{url}/healthz"))
    return process, url


def _until(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _wait(client: httpx.Client, job_id: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 120
    while True:
        status = client.get(f"/jobs/{job_id}").json()
        if status["status"] in ("completed", "failed", "cancelled"):
            return status
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_filters_over_http(server: tuple[httpx.Client, Path]) -> None:
    client, _ = server
    upload(
        client,
        "water-cycle.pdf",
        "roman-aqueducts.rst",
        attributes='[{"team": "science", "year": 2023}, {"team": "history", "year": 2021}]',
    )
    upload(client, "printing-press.html", attributes='{"team": "history", "year": 2024}')
    only_history = {
        "type": "and",
        "filters": [{"key": "team", "type": "eq", "value": "history"}, {"key": "year", "type": "gte", "value": 2022}],
    }
    hits = client.post(
        "/search", json={"query": "water flowing through channels", "k": 5, "filters": only_history}
    ).json()["results"]
    assert hits and {Path(h["path"]).name for h in hits} == {"printing-press.html"}
    by_path = {"key": "path", "type": "glob", "value": "**/*.rst"}
    hits = client.post("/search", json={"query": "water", "k": 5, "filters": by_path}).json()["results"]
    assert hits and all(h["path"].endswith(".rst") for h in hits)
    bad = client.post("/search", json={"query": "water", "filters": {"key": "team", "type": "equals", "value": "x"}})
    assert bad.status_code == 422 and '"equals" is not one of' in bad.json()["error"]["message"]
    ask = client.post(
        "/ask", json={"question": "who built aqueducts?", "filters": {"key": "team", "type": "eq", "value": "science"}}
    ).json()
    assert {Path(h["path"]).name for h in ask["results"]} == {"water-cycle.pdf"}
    listed = client.get("/documents", params={"filters": '{"key": "year", "type": "lt", "value": 2024}'}).json()["data"]
    assert sorted(Path(d["path"]).name for d in listed) == ["roman-aqueducts.rst", "water-cycle.pdf"]
    assert client.get("/documents", params={"filters": "{nope"}).status_code == 422
    assert client.patch("/documents/1", json={"attributes": {'bad"key': 1}}).status_code == 422


def test_server_watch_setting(tmp_path: Path, model_cache: Path, embedder, store: str) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "one.md").write_text("# One\n\nFirst watched note about rivers.")
    index, _ = open_index(tmp_path / "ix", embedder, None, store=store)
    index.close()
    settings = Settings(index_dir=tmp_path / "ix", cache_dir=model_cache, watch_paths=(folder,))
    with ServerThread(create_app(settings)) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        _until(lambda: client.get("/stats").json()["documents"] == 1)
        (folder / "two.md").write_text("# Two\n\nSecond watched note about mountains.")
        _until(lambda: client.get("/stats").json()["documents"] == 2)
        (folder / "one.md").unlink()
        (folder / "two.md").write_text("# Two\n\nSecond watched note, now about deserts.")
        deserts = {"query": "deserts", "k": 5, "mode": "lexical"}
        _until(
            lambda: [Path(h["path"]).name for h in client.post("/search", json=deserts).json()["results"]] == ["two.md"]
        )
        _until(lambda: client.get("/stats").json()["documents"] == 1)


def test_indexes_built_the_same_way_share_one_embedder(tmp_path: Path, model_cache: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from search.http.registry import IndexRegistry

    for name in ("one", "two"):
        index, _ = open_index(tmp_path / name, embedder, None)
        index.close()
    registry = IndexRegistry(
        Settings(index_dir=tmp_path / "one", cache_dir=model_cache, named_indexes={"two": tmp_path / "two"})
    )
    try:
        first, second = registry.service("default"), registry.service("two")
        assert first is not second and first.embedder is second.embedder
        assert registry.embedder("local/all-MiniLM-L6-v2") is first.embedder, "/v1/embeddings uses the same copy"
    finally:
        registry.close()


def test_an_upload_killed_before_its_ingest_leaves_no_file_once_the_server_is_back(
    tmp_path: Path, model_cache: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    import signal

    index_dir = tmp_path / "ix"
    open_index(index_dir, embedder, None)[0].close()
    text = " ".join(f"Line {i} of a long upload about tides and harbours." for i in range(3000)).encode()
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache)}

    def serve() -> tuple[subprocess.Popen[bytes], str]:
        return _serve(env, "--index", str(index_dir))

    process, url = serve()
    try:  # the upload is stored, then embedded (seconds): kill the server in between
        sender = threading.Thread(target=_post_quietly, args=(f"{url}/documents", text), daemon=True)
        sender.start()
        _until(lambda: any((index_dir / "uploads").rglob("tides.txt")))
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert any((index_dir / "uploads").rglob("tides.txt")), "the kill left the stored upload behind"
    process, url = serve()
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            assert client.get("/documents").json()["data"] == []  # the index opens: its orphan uploads go
            assert not any(p.is_file() for p in (index_dir / "uploads").rglob("*"))
            again = client.post("/documents", files=[("files", ("tides.txt", text[:2000]))])
            assert again.status_code == 201 and again.json()["data"][0]["status"] == "completed"
    finally:
        process.terminate()
        process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _post_quietly(url: str, data: bytes) -> None:
    import contextlib

    with contextlib.suppress(httpx.HTTPError):  # the server is killed while it works on this request
        httpx.post(url, files=[("files", ("tides.txt", data))], timeout=120)


def test_uploads_survive_a_server_started_elsewhere_under_another_spelling_of_the_index(
    tmp_path: Path, model_cache: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A server started in another folder, naming the index another way, keeps every upload: those it stored
    (absolute paths) and those an older server stored relative to its own folder; only true orphans go."""
    from ingest import Files, ingest

    open_index(tmp_path / "ix", embedder, None)[0].close()
    monkeypatch.chdir(tmp_path)  # an older server, started here, stored its uploads as ix/uploads/...
    index, _ = open_index(Path("ix"), embedder, None)
    legacy = Path("ix/uploads/" + "a" * 64 + "/older.txt")
    legacy.parent.mkdir(parents=True)
    legacy.write_text("An older upload about lighthouses and their keepers.")
    ingest(index, embedder, Files([(legacy, {})]))
    index.close()
    stray = tmp_path / "ix" / "uploads" / ("b" * 64) / "stray.txt"  # stored, never published: an orphan
    stray.parent.mkdir(parents=True)
    stray.write_text("Never ingested.")
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache)}

    def serve(index: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
        return _serve(env, "--index", index, "--search-workers", "0", cwd=folder)

    process, url = serve("ix", tmp_path)  # relative, from the index's parent
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            posted = client.post("/documents", files=[("files", ("herons.txt", b"A note about herons."))])
            assert posted.status_code == 201, posted.text
            document = posted.json()["data"][0]["document"]
    finally:
        process.terminate()
        process.wait()
    assert Path(document["path"]).is_absolute() and Path(document["path"]).is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    process, url = serve(str(tmp_path / "ix"), elsewhere)  # absolute, from another folder
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            assert client.get(f"/documents/{document['id']}/file").content == b"A note about herons."
            assert client.get("/documents").json()["data"]  # the index is open: orphans were looked for
            assert (tmp_path / legacy).is_file(), "an upload stored by an older server was taken for an orphan"
            assert not stray.exists(), "a stored file no document names is removed"
            assert client.delete(f"/documents/{document['id']}").status_code == 200
            assert not Path(document["path"]).exists(), "deleting the document deletes its upload"
    finally:
        process.terminate()
        process.wait()
