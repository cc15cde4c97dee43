"""Folders a careful user or an attacker could hand to `semsearch ingest`: every run must finish.

Each hostile file is made here, under tmp_path, and is either ingested or named in
`skipped` with a reason; running again ingests and embeds nothing.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexes import LocalIndex
from ingest import open_index
from search import Settings
from search.http import create_app

from .conftest import ServerThread
from .support.pdfs import IMAGE_ONLY, pdf_bytes

HANG_SECONDS = 600  # a run that takes longer than this is a hang (the whole corpus takes well under a minute)


def ingest_json(run, folder: Path, index: Path) -> dict:  # type: ignore[no-untyped-def,type-arg]
    result = run("ingest", str(folder), "--index", str(index), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def write_raw(folder: Path, name: bytes, data: bytes) -> bytes:
    """Create a file whose name is raw bytes (not necessarily UTF-8); return its full byte path."""
    path = os.fsencode(folder) + b"/" + name
    with open(path, "wb") as file:
        file.write(data)
    return path


# --- file names that are not UTF-8 (issue 10, item 1) -----------------------------


def test_a_file_name_that_is_not_utf8_is_ingested_and_shown_escaped(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, index = tmp_path / "d", tmp_path / "ix"
    folder.mkdir()
    raw = write_raw(folder, b"ok_\xff.txt", b"rain falls on the plain")
    (folder / "fine.txt").write_text("hello world")

    summary = ingest_json(run, folder, index)
    assert (summary["ingested"], summary["skipped"]) == (2, [])

    found = run("search", "rain on the plain", "--index", str(index), "--json")
    path = json.loads(found.output)["results"][0]["path"]
    assert path == f"{folder}/ok_\\xff.txt"  # shown with the odd byte escaped...
    assert codecs.escape_decode(path.encode("utf-8"))[0] == raw  # ...and nothing lost: it names the file again

    again = ingest_json(run, folder, index)
    assert (again["ingested"], again["unchanged"], again["embedded"]) == (0, 2, 0)
    os.remove(raw)
    assert ingest_json(run, folder, index)["removed"] == 1


def test_plain_output_prints_a_non_utf8_name(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "d"
    folder.mkdir()
    write_raw(folder, b"caf\xe9.txt", b"")  # empty, so it is listed among the skipped files
    result = run("ingest", str(folder), "--index", str(tmp_path / "ix"))
    assert result.exit_code == 0, result.output
    assert "caf\\xe9.txt: empty file" in result.output


# --- the paths named on the command line (item 8) --------------------------------


def test_a_missing_path_exits_2_and_creates_no_index(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("ingest", str(tmp_path / "no" / "such" / "path"), "--index", str(tmp_path / "ix"))
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not (tmp_path / "ix").exists()


def test_an_empty_folder_says_so(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    result = run("ingest", str(tmp_path / "empty"), "--index", str(tmp_path / "ix"))
    assert result.exit_code == 0, result.output
    assert f"No documents found in {tmp_path / 'empty'}" in result.output
    assert ingest_json(run, tmp_path / "empty", tmp_path / "ix")["files_seen"] == 0


# --- the nasty-files corpus: every file ingested or named with a reason -----------------


_BODY = ("Anemones close when the water leaves.", "Crabs hide under the weed.", "Gulls take what is left.")


def _pages(topic: str) -> list[list[str]]:
    """Three pages of different text between the same running header and a numbered footer."""
    return [[f"Survey of {topic}", line, f"Page {n} of 3"] for n, line in enumerate(_BODY, 1)]


def build_corpus(root: Path) -> tuple[Path, dict[str, str | None]]:
    """A folder of hostile files; returns it and, for each file, the expected skip reason (None: ingested)."""
    folder, outside = root / "corpus", root / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "secret.md").write_text("# Not yours\n\nkept out")
    good_pdf = pdf_bytes(_pages("tide pools"))
    files: dict[bytes, tuple[bytes, str | None]] = {
        b"encrypted.pdf": (pdf_bytes([["secret words"]], password="s3cret"), "encrypted PDF (password required)"),
        b"corrupt.pdf": (good_pdf[: len(good_pdf) // 2], "corrupt PDF"),
        b"empty.pdf": (b"", "empty file"),
        b"zero-pages.pdf": (pdf_bytes([]), "corrupt PDF: no pages"),
        b"image-only.pdf": (pdf_bytes([IMAGE_ONLY, IMAGE_ONLY]), "no extractable text"),
        b"running-heads.pdf": (good_pdf, None),
        b"binary.txt": (bytes(range(256)) * 64, "binary file, not text"),
        b"invalid-utf8.txt": (b"caf\xc3 \xff\xfe bad \xc0\xaf bytes \xed\xa0\x80 here", None),
        b"mostly-utf8.txt": ("Café crème and naïve façade, twice: Café.".encode() + b" \xff", None),
        b"utf16-bom.txt": ("Über Zürich, grüße".encode("utf-16"), None),
        b"latin1.txt": ("Crème brûlée, £3 at the café".encode("latin-1"), None),
        b"mail.txt": (b"From: ada@example.org\nSubject: Parking moves\n\nLevel 2 from Monday.", None),
        b"whitespace.md": (b" \n\t\n", "empty file"),
        b"ok_\xff.txt": (b"rain falls on the plain", None),
        b"caf\xe9 notes.md": (b"# Latin-1 name\n\nbody text", None),
        b"adversarial.md": (("**a " * 83_000 + "\n" + "_" * 333_000 + "\n" + "[" * 333_000 + "\nend").encode(), None),
        b"adversarial.rst": (("**a *a `a <a :a:a " * 55_000 + "\nend").encode(), None),
        b"deep.html": (b"<div>" * 200_000 + b"<p>deep</p>", "HTML elements nested over 1024 deep"),
        b"malformed.html": (b"<p>a\n" + b"<a\n" * 100_000 + b"<b x='" * 50_000, None),
        b"broken-sidecar.txt": (b"the text is fine", "unreadable attributes sidecar"),
        b"broken-sidecar.txt.meta.json": (b"{not json", None),  # not a document type: walked past
    }
    for name, (data, _) in files.items():
        write_raw(folder, name, data)
    (folder / "loop").symlink_to("loop")
    (folder / "escape.md").symlink_to(outside / "secret.md")
    (folder / "up").symlink_to("..")
    os.mkfifo(folder / "pipe.txt")
    expected = {path_key_of(folder, name): reason for name, (_, reason) in files.items() if not name.endswith(b".json")}
    expected |= {
        f"{folder}/loop": "symbolic link loop",
        f"{folder}/escape.md": "symbolic link out of the walked folder, not followed",
        f"{folder}/up": "symbolic link to a folder out of the walked folder, not followed",
        f"{folder}/pipe.txt": "not a regular file (FIFO)",
    }
    return folder, expected


def path_key_of(folder: Path, name: bytes) -> str:
    return f"{folder}/{name.decode('utf-8', 'backslashreplace')}"


def ingest_process(folder: Path, index: Path, model_cache: Path) -> dict:  # type: ignore[type-arg]
    """`semsearch ingest --json` as a real process: a hang is a timeout, a crash a non-zero exit."""
    env = {**os.environ, "SEMSEARCH_CACHE_DIR": str(model_cache)}
    command = [sys.executable, "-c", "from search.cli.main import main; main()", "ingest", str(folder)]
    done = subprocess.run(
        [*command, "--index", str(index), "--json"], env=env, capture_output=True, timeout=HANG_SECONDS
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_every_hostile_file_is_ingested_or_named_and_a_rerun_is_a_no_op(tmp_path: Path, model_cache: Path) -> None:
    folder, expected = build_corpus(tmp_path)
    first = ingest_process(folder, tmp_path / "ix", model_cache)

    skipped = {s["path"]: s["reason"] for s in first["skipped"]}
    with LocalIndex.open(tmp_path / "ix").read() as reader:
        stored = {d.record.path: d.record for d in reader.documents()}
    for path, reason in expected.items():
        if reason is None:
            assert path in stored, f"{path} was neither ingested nor skipped: {skipped.get(path)}"
        else:
            assert skipped.get(path, "").startswith(reason), (path, skipped.get(path))
    assert set(stored) | set(skipped) == set(expected)  # nothing else: the outside file stayed out
    assert first["ingested"] == len(stored) == sum(r is None for r in expected.values())
    assert stored[f"{folder}/mail.txt"].title == "Parking moves"
    assert stored[f"{folder}/running-heads.pdf"].title == _BODY[0]  # not the running header

    again = ingest_process(folder, tmp_path / "ix", model_cache)
    assert (again["ingested"], again["embedded"], again["removed"]) == (0, 0, 0)
    assert again["unchanged"] == len(stored)
    assert {s["path"]: s["reason"] for s in again["skipped"]} == skipped


# --- the same names through the HTTP server: an ingest job and an upload --------------------


@pytest.fixture
def server(tmp_path: Path, model_cache: Path, embedder) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    index, _ = open_index(tmp_path / "default", embedder, None)
    index.close()
    (tmp_path / "allowed").mkdir()
    settings = Settings(index_dir=tmp_path / "default", cache_dir=model_cache, ingest_roots=(tmp_path / "allowed",))
    with ServerThread(create_app(settings)) as running, httpx.Client(base_url=running.url, timeout=120) as client:
        yield client


def test_an_ingest_job_takes_a_non_utf8_name(server: httpx.Client, tmp_path: Path) -> None:
    folder = tmp_path / "allowed" / "drive"
    folder.mkdir()
    write_raw(folder, b"ok_\xff.txt", b"rain falls on the plain")
    job = server.post("/ingest", json={"path": str(folder)}).json()
    deadline = time.monotonic() + 120
    while (status := server.get(f"/jobs/{job['id']}").json())["status"] in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the job hangs"
        time.sleep(0.05)
    assert status["status"] == "completed", status
    hits = server.post("/search", json={"query": "rain on the plain", "k": 1}).json()["results"]
    assert hits[0]["path"] == f"{folder}/ok_\\xff.txt"


def test_an_upload_named_with_raw_bytes_is_stored(server: httpx.Client) -> None:
    boundary = "hostile-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="'.encode()
        + b'ok_\xff.txt"\r\nContent-Type: text/plain\r\n\r\nrain falls on the plain\r\n'
        + f"--{boundary}--\r\n".encode()
    )
    response = server.post(
        "/documents", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code < 300, response.text
    hits = server.post("/search", json={"query": "rain on the plain", "k": 1}).json()["results"]
    assert hits[0]["path"].endswith(".txt") and "rain" in hits[0]["text"]
