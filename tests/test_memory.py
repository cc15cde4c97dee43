"""Memory for one large file grows with its size, not with its tokens (issue 10, item 4).

Each ingest runs in a subprocess that reports how far its peak RSS (VmHWM, reset once
the model is loaded) rose above its RSS just before the ingest. The file is one 2 MB
paragraph of short words (~2 characters a token), the worst case for a chunker that
keeps every token as a Python object: the old one rose by 260 MB (simulated OpenAI
model) and 540-600 MB (local model, dry run) on it, the streaming one by 47 and 85 MB,
mostly the tokenizers' own working memory.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openai_sim import create_simulator

from .conftest import ServerThread

FILE_BYTES = 2 * 2**20
MB = 2**20

_MEASURE = """
import re, resource, sys
from pathlib import Path
from ingest import DEFAULT_EMBEDDING_MODEL, Files, RemoteOptions, ingest, make_embedder, open_index

path, cache, url, index_dir = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
if url == "-":
    embedder = make_embedder(DEFAULT_EMBEDDING_MODEL, cache_dir=cache)
else:
    remote = RemoteOptions(base_url=url, api_key="sk-test", dimensions=64)
    embedder = make_embedder("openai/text-embedding-3-small", cache_dir=cache, remote=remote)
index = None if index_dir == "-" else open_index(Path(index_dir), embedder, None)[0]
embedder.count_tokens(["warm up"])
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # the peak starts again from here: loading the model peaks higher than the ingest
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
summary = ingest(index, embedder, Files([(path, {})]), dry_run=index is None)
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read())[1]) * 1024
print(summary.ingested, summary.chunks, peak - before)
"""


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(7)
    words = ["a", "to", "of", "is", "it", "go", "an", "12", "7", "x", "by", "we", "up", "so", "no"]
    parts, size = [], 0
    while size < FILE_BYTES:
        word = rng.choice(words) + (rng.choice(".,;") if rng.random() < 0.1 else "")
        parts.append(word)
        size += len(word) + 1
    path = tmp_path_factory.mktemp("large") / "one-paragraph.txt"
    path.write_text(" ".join(parts))
    return path


@pytest.fixture(scope="module")
def simulator() -> Iterator[ServerThread]:
    with ServerThread(create_simulator()) as server:
        yield server


def _growth(path: Path, cache: Path, url: str, index_dir: str) -> tuple[int, int, int]:
    if not sys.platform.startswith("linux"):
        pytest.skip("measures through /proc/self")
    command = [sys.executable, "-c", _MEASURE, str(path), str(cache), url, index_dir]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    ingested, chunks, grown = (int(v) for v in done.stdout.split())
    return ingested, chunks, grown


def _bound(path: Path) -> int:
    return 20 * path.stat().st_size + 150 * MB  # measured: 47-85 MB now, 270-540 MB before


def test_a_dry_run_of_a_large_file_stays_within_a_few_times_its_size(
    large_file: Path, model_cache: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    ingested, chunks, grown = _growth(large_file, model_cache, "-", "-")
    assert ingested == 1 and chunks > 1000
    assert grown < _bound(large_file), f"peak RSS rose {grown / MB:.0f} MB for a {FILE_BYTES / MB:.0f} MB file"


def test_ingesting_a_large_file_stays_within_a_few_times_its_size(
    large_file: Path, model_cache: Path, simulator: ServerThread, tmp_path: Path
) -> None:
    ingested, chunks, grown = _growth(large_file, model_cache, f"{simulator.url}/v1", str(tmp_path / "ix"))
    assert ingested == 1 and chunks > 1000
    assert grown < _bound(large_file), f"peak RSS rose {grown / MB:.0f} MB for a {FILE_BYTES / MB:.0f} MB file"
