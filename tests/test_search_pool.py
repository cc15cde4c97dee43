"""Searches in worker processes (`SEMSEARCH_SEARCH_WORKERS`): same answers, fresh publishes, errors, a killed worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from search import Settings
from search.http import create_app
from search.service import SearchService

from .conftest import ServerThread

TOPICS = ["volcanoes erupt lava and ash", "tides follow the moon", "coffee brewing needs hot water", "chess openings"]


def _children() -> list[int]:
    """This process's pool workers (children started by multiprocessing's spawn, not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == os.getpid() and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def test_searches_in_worker_processes(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(40):
        (folder / f"note{n}.txt").write_text(f"Note {n}: {TOPICS[n % 4]}, told for the {n}th time.")
    index_dir = tmp_path / "ix"
    assert run("ingest", str(folder), "--index", str(index_dir), "--embedding-model", "hash/bow-384").exit_code == 0
    local = SearchService.from_settings(Settings(index_dir=index_dir))
    expected = [(h.chunk_id, round(h.score, 6)) for h in local.search("moon tides", 5)]
    local.close()
    before = set(_children())
    settings = Settings(index_dir=index_dir, search_workers=2, merge_interval=0)
    with ServerThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        found = client.post("/search", json={"query": "moon tides", "k": 5}).json()["results"]
        assert [(r["chunk_id"], r["score"]) for r in found] == expected, "a worker finds what the server would"
        assert len(set(_children()) - before) >= 2, "the searches ran in worker processes"

        upload = client.post("/documents", files=[("files", ("new.txt", b"Glaciers carve fjords slowly."))])
        assert upload.status_code == 201, upload.text
        hits = client.post("/search", json={"query": "glaciers fjords", "k": 1}).json()["results"]
        assert hits[0]["path"].endswith("new.txt"), "workers see what the server just published"

        blank = client.post("/search", json={"query": "   ", "k": 3})
        assert blank.status_code == 422 and "empty" in blank.json()["error"]["message"], blank.text

        for pid in set(_children()) - before:
            os.kill(pid, signal.SIGKILL)  # the pool's workers die (out of memory, killed)
        time.sleep(0.2)
        again = client.post("/search", json={"query": "moon tides", "k": 5})
        assert again.status_code == 200, "a fresh pool takes over from the killed one"
        assert [r["chunk_id"] for r in again.json()["results"]] == [chunk_id for chunk_id, _ in expected]
        answer = client.post("/ask", json={"question": "what do the tides follow?", "k": 3}).json()
        assert answer["results"] and "moon" in answer["results"][0]["text"]
