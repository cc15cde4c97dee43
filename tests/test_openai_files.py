"""OpenAI's Files API on our server, driven by the official `openai` client."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from search import Settings
from search.http import create_app
from search.http.v1.file_store import FileNotFound, FileStore

from .conftest import DATA, ServerThread

ADD_FOREVER = """
import os, sys
from pathlib import Path
from search.http.v1.file_store import FileNotFound, FileStore
store = FileStore(Path(sys.argv[1]))
while True:
    store.add("random.bin", os.urandom(4 * 2**20), "user_data")
"""
BATCH_LINE = {"custom_id": "1", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m", "input": "x"}}


@pytest.fixture(scope="module")
def served(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A `semsearch serve` app on loopback (files need no index); its URL and where it keeps files."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("files") / "ix", cache_dir=model_cache)
    with ServerThread(create_app(settings)) as server:
        yield server.url, settings.openai_dir / "files"


@pytest.fixture
def client(served: tuple[str, Path]) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{served[0]}/v1", api_key="anything", max_retries=0) as client:
        yield client


def stored_bytes(folder: Path) -> list[Path]:
    """The stored contents (not the file objects' records)."""
    return [p for p in folder.rglob("*") if p.is_file() and p.parent.name != "objects"]


def test_each_purpose_round_trips(client: OpenAI) -> None:
    text = (DATA / "sample" / "photosynthesis.md").read_bytes()
    batch = (json.dumps(BATCH_LINE) + "\n").encode()
    for purpose, name, data in [
        ("assistants", "photosynthesis.md", text),
        ("user_data", "notes.txt", b"plain notes"),
        ("vision", "pixel.png", b"\x89PNG\r\n\x1a\n not really"),
        ("batch", "requests.jsonl", batch),
    ]:
        made = client.files.create(file=(name, data), purpose=purpose)  # type: ignore[arg-type]
        assert made.id.startswith("file-") and len(made.id) == 29
        assert (made.object, made.filename, made.purpose, made.bytes) == ("file", name, purpose, len(data))
        assert made.status == "processed" and made.expires_at is None
        assert client.files.retrieve(made.id) == made
        assert client.files.content(made.id).read() == data
    listed = {f.purpose for f in client.files.list()}
    assert {"assistants", "user_data", "vision", "batch"} <= listed


def test_content_comes_with_a_content_type(served: tuple[str, Path], client: OpenAI) -> None:
    made = client.files.create(file=("page.md", b"# Title\n\nBody."), purpose="assistants")
    response = httpx.get(f"{served[0]}/v1/files/{made.id}/content")
    assert response.status_code == 200 and response.content == b"# Title\n\nBody."
    assert response.headers["content-type"].startswith("text/markdown")
    other = client.files.create(file=("blob", b"\x00\x01"), purpose="user_data")
    assert httpx.get(f"{served[0]}/v1/files/{other.id}/content").headers["content-type"] == "application/octet-stream"


def test_listing_pages_through_every_file_in_both_orders(client: OpenAI) -> None:
    made = [client.files.create(file=(f"page{n}.txt", f"page {n}".encode()), purpose="user_data").id for n in range(5)]
    newest_first = [f.id for f in client.files.list(limit=2, purpose="user_data")]  # auto-pagination: 2 a page
    mine = [i for i in newest_first if i in made]
    assert mine == made[::-1]
    assert len(newest_first) == len(set(newest_first)), "no file is listed twice across pages"
    oldest_first = [f.id for f in client.files.list(limit=2, order="asc", purpose="user_data")]
    assert oldest_first == newest_first[::-1]
    page = client.files.list(limit=2, order="asc", after=made[1])
    assert [f.id for f in page.data] == made[2:4] and page.has_more
    last = client.files.list(limit=2, order="asc", after=made[3])
    assert [f.id for f in last.data] == made[4:] and not last.has_more


def test_a_script_deleting_what_it_lists_sees_every_file(client: OpenAI) -> None:
    """Each next page starts after the last id of the one before, which the script has just deleted."""
    made = {client.files.create(file=(f"d{n}.txt", f"delete me {n}".encode()), purpose="vision").id for n in range(5)}
    deleted = []
    for listed in client.files.list(limit=2, purpose="vision"):  # auto-pagination, 2 a page
        client.files.delete(listed.id)
        deleted.append(listed.id)
    assert made <= set(deleted) and len(deleted) == len(set(deleted))  # earlier tests' vision files go too
    assert list(client.files.list(purpose="vision")) == []
    with pytest.raises(openai.BadRequestError, match="after"):
        client.files.list(after="file-" + "0" * 24)  # never was a file here


def test_before_pages_backwards(served: tuple[str, Path], client: OpenAI) -> None:
    """`before` (the SDK's files.list has no such argument; the vector-store lists have) over raw HTTP."""
    made = [client.files.create(file=(f"b{n}.txt", f"before {n}".encode()), purpose="evals").id for n in range(4)]
    params: dict[str, str | int] = {"order": "asc", "before": made[3], "limit": 2, "purpose": "evals"}
    page = httpx.get(f"{served[0]}/v1/files", params=params).json()
    assert [f["id"] for f in page["data"]] == made[1:3] and page["has_more"]


def test_the_list_object_has_cursor_fields(served: tuple[str, Path], client: OpenAI) -> None:
    made = [client.files.create(file=(f"c{n}.txt", f"cursor {n}".encode()), purpose="assistants").id for n in range(3)]
    body = httpx.get(f"{served[0]}/v1/files", params={"limit": 2, "order": "asc", "after": made[0]}).json()
    assert body["object"] == "list" and [f["id"] for f in body["data"]] == made[1:] and body["has_more"] is False
    assert (body["first_id"], body["last_id"]) == (made[1], made[2])
    empty = httpx.get(f"{served[0]}/v1/files", params={"purpose": "fine-tune"}).json()
    assert empty == {"object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}


def test_delete_then_not_found(client: OpenAI) -> None:
    made = client.files.create(file=("gone.txt", b"soon gone"), purpose="user_data")
    deleted = client.files.delete(made.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (made.id, "file", True)
    with pytest.raises(openai.NotFoundError, match=made.id):
        client.files.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(made.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(made.id)
    assert made.id not in {f.id for f in client.files.list()}


def test_the_same_bytes_are_stored_once(served: tuple[str, Path], client: OpenAI) -> None:
    data = b"the same bytes, uploaded twice"
    before = len(stored_bytes(served[1]))
    first = client.files.create(file=("twice.txt", data), purpose="user_data")
    second = client.files.create(file=("twice.txt", data), purpose="assistants")
    assert first.id != second.id
    assert len(stored_bytes(served[1])) == before + 1
    client.files.delete(first.id)
    assert client.files.content(second.id).read() == data, "the other file object keeps the bytes"
    client.files.delete(second.id)
    assert len(stored_bytes(served[1])) == before, "the last one removes them"


def test_bad_uploads_are_400s_that_say_why(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="empty") as empty:
        client.files.create(file=("empty.txt", b""), purpose="user_data")
    assert empty.value.body["param"] == "file"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="not a purpose") as purpose:
        client.files.create(file=("a.txt", b"x"), purpose="homework")  # type: ignore[arg-type]
    assert purpose.value.body["param"] == "purpose"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="JSONL"):
        client.files.create(file=("requests.csv", b"a,b\n"), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="file"):
        client.files.create(file=("x" * 300 + ".txt", b"x"), purpose="user_data")
    with pytest.raises(openai.BadRequestError, match="after"):
        client.files.list(after="file-000000000000000000000000")


def test_expires_after_sets_expires_at(client: OpenAI) -> None:
    made = client.files.create(
        file=("brief.txt", b"brief"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert made.expires_at == made.created_at + 3600
    assert client.files.retrieve(made.id).expires_at == made.expires_at
    with pytest.raises(openai.BadRequestError, match="3600"):
        client.files.create(
            file=("brief.txt", b"brief"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 5}
        )


def test_a_file_over_the_upload_limit_is_a_413(model_cache: Path, tmp_path: Path) -> None:
    settings = Settings(index_dir=tmp_path / "ix", cache_dir=model_cache, max_upload_mb=0.01)  # 10 KiB
    with ServerThread(create_app(settings)) as server, OpenAI(base_url=f"{server.url}/v1", api_key="x") as client:
        with pytest.raises(openai.APIStatusError, match="limit") as large:
            client.files.create(file=("big.txt", b"x" * 20_000), purpose="user_data")
        assert large.value.status_code == 413
        assert client.files.create(file=("small.txt", b"x" * 2_000), purpose="user_data").bytes == 2_000
    assert [p.name for p in stored_bytes(settings.openai_dir / "files")] == ["small.txt"]


def test_a_store_killed_mid_write_never_lists_a_half_written_file(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    caught = 0
    for _ in range(4):  # each run adds files until it is killed while one is being written
        caught += kill_while_writing(subprocess.Popen([sys.executable, "-c", ADD_FOREVER, str(folder)]), folder)
        store = FileStore(folder)
        for record in store.all():
            data = store.path(record.id).read_bytes()
            assert len(data) == record.bytes and hashlib.sha256(data).hexdigest() == record.sha256
        store.delete(store.add("next.txt", b"the next add cleans up", "user_data").id)
        named = {store.path(r.id) for r in store.all()}
        assert set(stored_bytes(folder)) == named, "no temporary file, no bytes without a file object"
    assert caught, "at least one run was killed with a half-written file on disk"


def kill_while_writing(process: subprocess.Popen[bytes], folder: Path) -> bool:
    """SIGKILL the process once it has stored a file and is writing the next; whether a temporary file was left."""
    try:
        while process.poll() is None:
            if (folder / "objects").is_dir() and list(folder.glob("*/.upload.*.tmp")):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
    finally:
        process.wait()
    return bool(list(folder.glob("*/.upload.*.tmp")))


def test_an_expired_file_is_gone_with_its_bytes(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    kept = store.add("kept.txt", b"kept", "user_data")
    brief = store.add("brief.txt", b"brief", "user_data", expires_after=0)  # the route takes 3600 s at least
    assert brief.expires_at == brief.created_at
    with pytest.raises(FileNotFound):
        store.get(brief.id)
    assert [r.id for r in store.all()] == [kept.id]
    assert stored_bytes(tmp_path / "files") == [store.path(kept.id)]


def test_the_readme_files_example_runs(client: OpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python block of the README's "Files" subsection, with its `client` and a handbook.md."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Files\n", 1)[1].split("\n### ", 1)[0]
    script = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "handbook.md").write_text("# Leave\n\nNew staff get 25 days of leave.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(script, "README.md", "exec"), {"client": client})
    assert not [f for f in client.files.list() if f.filename == "handbook.md"], "the example deletes its file"


def test_uploads_racing_the_first_read_all_land(tmp_path: Path) -> None:
    """The first read of a store removes bytes no record names; it must never take those of an add in flight."""
    for attempt in range(5):
        store = FileStore(tmp_path / f"files{attempt}")
        texts = [f"text {n}".encode() * 1000 for n in range(8)]
        with ThreadPoolExecutor(8) as pool:
            made = list(pool.map(store.add, [f"f{n}.txt" for n in range(8)], texts, ["user_data"] * 8))
        assert sorted(r.id for r in store.all()) == sorted(r.id for r in made)
        assert [store.path(r.id).read_bytes() for r in made] == texts
