"""OpenAI's vector stores on the wire: the official SDK against a real served app over real indexes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi import FastAPI
from openai import OpenAI

from indexes import open_store, store_exists
from search import Settings
from search.http import create_app
from search.http.registry import IndexRegistry

from .conftest import DATA, ServerThread
from .support.milvus import require_pymilvus
from .support.stores import STORE_IDS, STORES

ADMIN = "admin-key-0123456789"
SCOPED = "scoped-key-0123456789"  # read-write, the default index only
READER = "reader-key-0123456789"  # read-only, every index
TEA = (
    "# Tea\n\nGreen tea is steamed or pan-fired soon after picking, which keeps it green.\n\n"
    "Black tea is withered, rolled and fully oxidised before it is dried, which turns the leaf dark.\n"
)


@contextlib.contextmanager
def served(index_dir: Path, model_cache: Path, **settings: Any) -> Iterator[str]:
    """`semsearch serve`'s app on loopback; yields its /v1 URL."""
    with serving(index_dir, model_cache, **settings) as (url, _):
        yield url


@contextlib.contextmanager
def serving(index_dir: Path, model_cache: Path, **settings: Any) -> Iterator[tuple[str, FastAPI]]:
    """`semsearch serve`'s app on loopback; yields its /v1 URL and the app (whose registry's locks tests take)."""
    app = create_app(Settings(index_dir=index_dir, cache_dir=model_cache, **settings))
    with ServerThread(app) as server:
        yield f"{server.url}/v1", app


def client(url: str, key: str = ADMIN) -> OpenAI:
    return OpenAI(base_url=url, api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vs") / "ix"


@pytest.fixture(scope="module", params=STORES, ids=STORE_IDS)
def server(request: pytest.FixtureRequest, index_dir: Path, model_cache: Path) -> Iterator[tuple[str, FastAPI]]:
    """The served app, its vector stores made in each store in turn (local, Milvus Lite)."""
    if request.param == "milvus":
        require_pymilvus()
    with serving(index_dir / request.param, model_cache, store=request.param) as both:
        yield both


@pytest.fixture(scope="module")
def url(server: tuple[str, FastAPI]) -> str:
    return server[0]


@pytest.fixture(scope="module")
def registry(server: tuple[str, FastAPI]) -> IndexRegistry:
    found: IndexRegistry = server[1].state.registry
    return found


@contextlib.contextmanager
def index_busy(folder: Path) -> Iterator[None]:
    """Another writer (as a CLI ingest would be) holds the index's lock meanwhile."""
    index = open_store(folder)
    try:
        with index.writer():
            yield
    finally:
        index.close()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def long_text(paragraphs: int = 40) -> bytes:
    topics = ["tides", "glaciers", "volcanoes", "deserts", "rivers", "forests", "storms", "caves"]
    lines = [
        f"Paragraph {n} is about {topics[n % len(topics)]}. "
        + " ".join(f"Sentence {m} says something particular about {topics[(n + m) % len(topics)]}." for m in range(6))
        for n in range(paragraphs)
    ]
    return "\n\n".join(lines).encode()


def stored_passages(folder: Path, path_part: str) -> list[Any]:
    """The passages the catalog holds for the document whose path contains `path_part`."""
    index = open_store(folder)
    try:
        with index.read() as reader:
            return [c for c in reader.all_chunks() if path_part in c.path]
    finally:
        index.close()


def searched(page: Any) -> list[str]:
    """The page's `search_query` (a field of OpenAI's reply the SDK's page type keeps as an extra)."""
    return list(page.model_dump()["search_query"])


def test_create_list_retrieve_update_delete(url: str, registry: IndexRegistry) -> None:
    api = client(url)
    made = [api.vector_stores.create(name=f"store {n}", metadata={"n": str(n)}) for n in range(5)]
    assert all(re.fullmatch(r"vs_[0-9a-f]{24}", s.id) for s in made)
    assert made[0].name == "store 0" and made[0].status == "completed" and made[0].file_counts.total == 0
    assert made[0].usage_bytes > 0  # the empty index's files
    first = api.vector_stores.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    listed = [s.id for s in api.vector_stores.list(limit=2)]  # the SDK follows `after` page by page
    mine = [s.id for s in made]
    assert [i for i in listed if i in mine] == sorted(mine, key=lambda i: listed.index(i))
    assert set(mine) <= set(listed) and len(listed) == len(set(listed))
    ascending = [s.id for s in api.vector_stores.list(limit=2, order="asc")]
    assert ascending == listed[::-1]

    changed = api.vector_stores.update(
        made[1].id, name="renamed", metadata={"team": "a"}, expires_after={"anchor": "last_active_at", "days": 7}
    )
    assert changed.name == "renamed" and changed.metadata == {"team": "a"}
    assert changed.expires_after is not None and changed.expires_after.days == 7
    assert changed.last_active_at is not None and changed.expires_at == changed.last_active_at + 7 * 86_400
    assert api.vector_stores.retrieve(made[1].id).name == "renamed"

    with pytest.raises(openai.BadRequestError) as refused:
        api.vector_stores.create(metadata={f"k{n}": "v" for n in range(17)})
    assert refused.value.param == "metadata"
    with pytest.raises(openai.BadRequestError):
        api.vector_stores.update(made[1].id, expires_after={"anchor": "last_active_at", "days": 366})

    deleted = api.vector_stores.delete(made[2].id)
    assert deleted.deleted and deleted.id == made[2].id
    with pytest.raises(openai.NotFoundError):
        api.vector_stores.retrieve(made[2].id)
    assert made[2].id not in [s.id for s in api.vector_stores.list(limit=100)]
    api.vector_stores.files.upload_and_poll(vector_store_id=made[3].id, file=("tea.md", TEA.encode()))
    api.vector_stores.delete(made[3].id)
    time.sleep(0.5)  # a store (Milvus Lite) still writing after its delete would show here
    root = registry.settings.vector_store_root
    assert not (root / made[3].id).exists() and not [p for p in root.iterdir() if made[3].id in p.name]


def test_listing_opens_only_the_page_and_survives_a_damaged_store(tmp_path: Path, model_cache: Path) -> None:
    with served(tmp_path / "ix", model_cache) as url:
        made = [client(url).vector_stores.create(name=f"s{n}") for n in range(3)]
    root = Settings(index_dir=tmp_path / "ix").vector_store_root
    damaged, unreadable = root / ("vs_" + "d" * 24), root / ("vs_" + "e" * 24)
    for copy in (damaged, unreadable):
        shutil.copytree(root / made[0].id, copy)
    (damaged / "chunks.sqlite").write_bytes(b"not a database " * 100)
    (unreadable / "config.json").write_text("{not json")
    with serving(tmp_path / "ix", model_cache) as (url, app):
        api = client(url)
        first = api.vector_stores.list(limit=1)
        assert len(first.data) == 1 and first.has_more
        assert set(app.state.registry.opened()) <= {first.data[0].id}  # the other stores are not opened
        listed = {s.id: s for s in api.vector_stores.list(limit=100)}
        assert set(listed) == {damaged.name, *[s.id for s in made]}  # the unreadable one is left out (and logged)
        assert listed[damaged.name].name == "s0" and listed[damaged.name].usage_bytes == 0


def test_a_create_stopped_before_its_index_is_cleared_and_a_store_deletes_whole(
    tmp_path: Path, model_cache: Path
) -> None:
    with served(tmp_path / "ix", model_cache) as url:
        kept = client(url).vector_stores.create(name="kept")
    root = Settings(index_dir=tmp_path / "ix").vector_store_root
    stopped = root / ("vs_" + "a" * 24)  # what a crash leaves between writing the state and making the index
    stopped.mkdir()
    shutil.copy(root / kept.id / "vector_store.json", stopped / "vector_store.json")
    other = root / ("vs_" + "b" * 24)  # a folder without our state is not ours to remove
    other.mkdir()
    with served(tmp_path / "ix", model_cache) as url:
        api = client(url)
        assert not stopped.exists() and other.is_dir()
        assert [s.id for s in api.vector_stores.list()] == [kept.id]
        assert api.vector_stores.delete(kept.id).deleted
        assert not (root / kept.id).exists() and not list(root.glob(".deleted-*"))
        assert api.vector_stores.list().data == []


def test_upload_and_poll_with_attributes_and_static_chunking(url: str, registry: IndexRegistry) -> None:
    api = client(url)
    store = api.vector_stores.create(name="chunks")
    small = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}}
    done = api.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("earth.txt", long_text()),
        attributes={"topic": "earth", "year": 2024},
        chunking_strategy=small,  # type: ignore[arg-type]
    )
    assert done.status == "completed" and done.last_error is None
    assert done.attributes == {"topic": "earth", "year": 2024}
    assert done.chunking_strategy is not None and done.chunking_strategy.type == "static"
    assert (
        done.chunking_strategy.static.max_chunk_size_tokens,
        done.chunking_strategy.static.chunk_overlap_tokens,
    ) == (
        100,
        20,
    )
    folder = registry.settings.vector_store_root / store.id  # where a store made over /v1 lives
    passages = stored_passages(folder, "earth.txt")
    assert len(passages) > 5
    assert all(p.chunk.tokens <= 100 for p in passages)
    content = list(api.vector_stores.files.content(done.id, vector_store_id=store.id))
    assert [c.text for c in content] == [p.text for p in sorted(passages, key=lambda p: p.chunk.ordinal)]

    # Larger than the local model reads (256 tokens): clamped, and the object says what was used.
    big = {"type": "static", "static": {"max_chunk_size_tokens": 1000, "chunk_overlap_tokens": 400}}
    clamped = api.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("earth-big.txt", long_text(41)),
        chunking_strategy=big,  # type: ignore[arg-type]
    )
    assert clamped.chunking_strategy is not None and clamped.chunking_strategy.type == "static"
    used = clamped.chunking_strategy.static
    assert used.max_chunk_size_tokens == 256 and used.chunk_overlap_tokens < 128
    assert all(p.chunk.tokens <= 256 for p in stored_passages(folder, "earth-big.txt"))

    with pytest.raises(openai.BadRequestError, match="at most half") as refused:
        api.vector_stores.files.create(
            vector_store_id=store.id,
            file_id=done.id,
            chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 60}},
        )
    assert refused.value.param == "chunking_strategy.static.chunk_overlap_tokens"


def test_file_batch_with_a_bad_file(url: str) -> None:
    api = client(url)
    store = api.vector_stores.create(name="batch")
    files = [
        ("tea.md", TEA.encode()),
        ("earth.txt", long_text(8)),
        ("data.bin", b"\x00\x01\x02 not a document"),
        ("broken.pdf", b"%PDF-1.4 this is not really a PDF"),
    ]
    batch = api.vector_stores.file_batches.upload_and_poll(store.id, files=files)
    assert batch.status == "completed" and batch.object == "vector_store.files_batch"
    counts = batch.file_counts
    assert (counts.completed, counts.failed, counts.in_progress, counts.cancelled, counts.total) == (2, 2, 0, 0, 4)
    failed = list(api.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, filter="failed"))
    errors = sorted((f.last_error.code, f.last_error.message[:20]) for f in failed if f.last_error)
    assert [code for code, _ in errors] == ["invalid_file", "unsupported_file"]
    completed = list(api.vector_stores.files.list(store.id, filter="completed", limit=1))
    assert len(completed) == 2 and all(f.status == "completed" for f in completed)
    assert len(list(api.vector_stores.files.list(store.id))) == 4
    assert api.vector_stores.retrieve(store.id).file_counts.total == 4
    again = api.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert again.file_counts == batch.file_counts
    cancelled = api.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert (cancelled.status, cancelled.file_counts) == ("completed", batch.file_counts)  # nothing left to stop


def test_a_create_that_fails_leaves_no_store(url: str) -> None:
    api = client(url)
    before = {s.id for s in api.vector_stores.list()}
    with pytest.raises(openai.NotFoundError):
        api.vector_stores.create(name="orphan?", file_ids=["file-nope"])
    good = api.files.create(file=("ok.txt", b"a file that exists"), purpose="assistants").id
    too_much = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}}
    for file_ids in ([good], []):  # overlap over half: refused with or without files to cut
        with pytest.raises(openai.BadRequestError) as refused:
            api.vector_stores.create(name="overlap", file_ids=file_ids, chunking_strategy=too_much)  # type: ignore[arg-type]
        assert refused.value.param == "chunking_strategy.static.chunk_overlap_tokens"
    assert {s.id for s in api.vector_stores.list()} == before


def test_a_finished_batch_stays_as_it_ended(url: str) -> None:
    """Cancelling it changes nothing; attaching one of its files again later leaves its counts."""
    api = client(url)
    store = api.vector_stores.create(name="finished").id
    a, b = (
        api.files.create(file=(f"{n}.txt", f"{n} is a file about {n}".encode()), purpose="assistants").id for n in "ab"
    )
    first = api.vector_stores.file_batches.create_and_poll(vector_store_id=store, file_ids=[a, b])
    assert (first.status, first.file_counts.completed, first.file_counts.total) == ("completed", 2, 2)
    cancelled = api.vector_stores.file_batches.cancel(batch_id=first.id, vector_store_id=store)
    assert (cancelled.status, cancelled.file_counts) == ("completed", first.file_counts)
    api.vector_stores.file_batches.create_and_poll(vector_store_id=store, file_ids=[a])
    again = api.vector_stores.file_batches.retrieve(batch_id=first.id, vector_store_id=store)
    assert (again.status, again.file_counts) == ("completed", first.file_counts)


def test_cancel_a_batch_while_the_worker_is_busy(url: str, registry: IndexRegistry) -> None:
    api = client(url)
    busy, store = api.vector_stores.create(name="busy"), api.vector_stores.create(name="cancel")
    big = api.files.create(file=("big.txt", long_text(400)), purpose="assistants")
    small = [api.files.create(file=(f"s{n}.md", TEA.encode()), purpose="assistants") for n in range(3)]
    files = [{"file_id": f.id, "attributes": {"n": n}} for n, f in enumerate(small)]
    with registry.write_lock(busy.id):  # the one worker takes the first file, then waits for this lock
        api.vector_stores.files.create(vector_store_id=busy.id, file_id=big.id)
        batch = api.vector_stores.file_batches.create(store.id, files=files)  # type: ignore[arg-type]
        assert batch.status == "in_progress" and batch.file_counts.in_progress == 3
        cancelled = api.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.cancelled == 3
    listed = list(api.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, filter="cancelled"))
    assert sorted(f.id for f in listed) == sorted(f.id for f in small)
    assert api.vector_stores.files.poll(big.id, vector_store_id=busy.id).status == "completed"
    assert api.vector_stores.search(store.id, query="black tea").data == []  # nothing of the batch was ingested

    again = api.vector_stores.file_batches.create_and_poll(store.id, files=files)  # type: ignore[arg-type]
    assert again.status == "completed" and again.file_counts.completed == 3
    attributes = {f.id: f.attributes for f in api.vector_stores.files.list(store.id)}
    assert attributes == {f.id: {"n": n} for n, f in enumerate(small)}


def test_cancelling_a_batch_leaves_the_same_file_in_another_batch(url: str, registry: IndexRegistry) -> None:
    api = client(url)
    busy, store = api.vector_stores.create(name="busy 2"), api.vector_stores.create(name="two batches")
    waiting = api.files.create(file=("wait.md", TEA.encode()), purpose="assistants")
    tea = api.files.create(file=("tea.md", TEA.encode()), purpose="assistants")
    with registry.write_lock(busy.id):
        api.vector_stores.files.create(vector_store_id=busy.id, file_id=waiting.id)
        first = api.vector_stores.file_batches.create(store.id, file_ids=[tea.id])
        second = api.vector_stores.file_batches.create(store.id, file_ids=[tea.id])  # the file is now the second's
        api.vector_stores.file_batches.cancel(first.id, vector_store_id=store.id)
    done = api.vector_stores.file_batches.poll(second.id, vector_store_id=store.id)
    assert done.status == "completed" and done.file_counts.completed == 1
    assert api.vector_stores.files.retrieve(tea.id, vector_store_id=store.id).status == "completed"


def test_a_busy_index_is_tried_again_and_keeps_a_changed_attribute(
    url: str, registry: IndexRegistry, caplog: Any
) -> None:
    api = client(url)
    store = api.vector_stores.create(name="locked")
    file = api.files.create(file=("tea.md", TEA.encode()), purpose="assistants")
    caplog.set_level(logging.WARNING, logger="semsearch.vector_stores")
    with index_busy(registry.settings.vector_store_root / store.id):
        api.vector_stores.files.create(vector_store_id=store.id, file_id=file.id, attributes={"team": "a"})
        wait_for(lambda: "tried again" in caplog.text, "the worker to meet the busy index")
        assert api.vector_stores.files.retrieve(file.id, vector_store_id=store.id).status == "in_progress"
        changed = api.vector_stores.files.update(file.id, vector_store_id=store.id, attributes={"team": "b"})
        assert changed.attributes == {"team": "b"}
    done = api.vector_stores.files.poll(file.id, vector_store_id=store.id)
    assert done.status == "completed" and done.attributes == {"team": "b"}
    b = {"key": "team", "type": "eq", "value": "b"}
    assert [r.file_id for r in api.vector_stores.search(store.id, query="tea", filters=b)] == [file.id]  # type: ignore[arg-type]


def test_an_expired_store_refuses_searches_and_files(url: str, registry: IndexRegistry) -> None:
    api = client(url)
    store = api.vector_stores.create(name="old", expires_after={"anchor": "last_active_at", "days": 1})
    assert store.status == "completed" and store.expires_at == store.created_at + 86_400
    # Two days pass: the store was last active before its one day ran out.
    state_file = registry.settings.vector_store_root / store.id / "vector_store.json"
    state = json.loads(state_file.read_text())
    state["last_active_at"] -= 2 * 86_400
    state_file.write_text(json.dumps(state))
    assert api.vector_stores.retrieve(store.id).status == "expired"
    with pytest.raises(openai.BadRequestError, match="expired"):
        api.vector_stores.search(store.id, query="tea")
    with pytest.raises(openai.BadRequestError, match="expired"):
        api.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("tea.md", TEA.encode()))
    api.vector_stores.update(store.id, expires_after={"anchor": "last_active_at", "days": 365})
    assert api.vector_stores.retrieve(store.id).status == "completed"
    assert api.vector_stores.search(store.id, query="tea").data == []


def test_search_with_a_compound_filter_and_a_threshold(url: str) -> None:
    api = client(url)
    store = api.vector_stores.create(name="search")
    docs: list[tuple[str, dict[str, str | float | bool]]] = [
        ("tea-2021.md", {"team": "a", "year": 2021}),
        ("tea-2023.md", {"team": "b", "year": 2023}),
        ("tea-2024.md", {"team": "a", "year": 2024}),
    ]
    ids = {}
    for name, attributes in docs:
        done = api.vector_stores.files.upload_and_poll(
            vector_store_id=store.id,
            file=(name, TEA.replace("Tea", f"Tea notes {name}").encode()),
            attributes=attributes,
        )
        ids[name] = done.id
        # Searchable as soon as upload_and_poll returns.
        found = api.vector_stores.search(store.id, query="how is black tea made", max_num_results=10)
        assert done.id in [r.file_id for r in found]
    compound = {
        "type": "and",
        "filters": [
            {"key": "team", "type": "eq", "value": "a"},
            {
                "type": "or",
                "filters": [
                    {"key": "year", "type": "gte", "value": 2024},
                    {"key": "year", "type": "eq", "value": 1999},
                ],
            },
        ],
    }
    page = api.vector_stores.search(store.id, query="black tea oxidised", filters=compound)  # type: ignore[arg-type]
    assert searched(page) == ["black tea oxidised"]
    assert {r.file_id for r in page} == {ids["tea-2024.md"]}
    hit = page.data[0]
    assert hit.filename == "tea-2024.md" and hit.attributes == {"team": "a", "year": 2024}
    assert 0 <= hit.score <= 1 and "oxidised" in hit.content[0].text

    everything = api.vector_stores.search(store.id, query="black tea oxidised").data
    scores = [r.score for r in everything]
    assert scores == sorted(scores, reverse=True) and len(everything) >= 3
    cut = scores[len(scores) // 2]
    kept = api.vector_stores.search(store.id, query="black tea oxidised", ranking_options={"score_threshold": cut}).data
    assert kept and all(r.score >= cut for r in kept) and len(kept) < len(everything)
    none = api.vector_stores.search(
        store.id, query="black tea oxidised", ranking_options={"ranker": "none", "score_threshold": 1.0}
    )
    assert none.data == [] or all(r.score >= 1.0 for r in none.data)

    several = api.vector_stores.search(store.id, query=["green tea", "dark leaf"], max_num_results=2)
    assert searched(several) == ["green tea", "dark leaf"] and len(several.data) == 2
    rewritten = api.vector_stores.search(store.id, query="What is black tea?", rewrite_query=True)
    assert searched(rewritten) == ["black tea"]
    with pytest.raises(openai.BadRequestError):
        api.vector_stores.search(store.id, query="tea", max_num_results=51)
    with pytest.raises(openai.BadRequestError) as bad_filter:
        api.vector_stores.search(store.id, query="tea", filters={"type": "eq", "key": "topic"})  # type: ignore[typeddict-item]
    assert bad_filter.value.param == "filters"


def test_deleted_file_stops_matching_and_the_file_stays(url: str) -> None:
    api = client(url)
    store = api.vector_stores.create(name="delete")
    done = api.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("tea.md", TEA.encode()))
    assert [r.file_id for r in api.vector_stores.search(store.id, query="green tea steamed")] == [done.id]
    gone = api.vector_stores.files.delete(done.id, vector_store_id=store.id)
    assert gone.deleted and gone.object == "vector_store.file.deleted"
    assert api.vector_stores.search(store.id, query="green tea steamed").data == []
    with pytest.raises(openai.NotFoundError):
        api.vector_stores.files.retrieve(done.id, vector_store_id=store.id)
    assert api.files.retrieve(done.id).id == done.id  # removing it from the store leaves the File


def test_a_delete_stopped_after_removing_the_document_can_be_finished(url: str, registry: IndexRegistry) -> None:
    api = client(url)
    store = api.vector_stores.create(name="half deleted")
    done = api.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("tea.md", TEA.encode()))
    folder = registry.folder(store.id)
    path = json.loads((folder / "vector_store_files.json").read_text())["files"][done.id]["path"]
    index = registry.service(store.id).index
    with registry.write_lock(store.id), index.writer() as writer:  # what a kill -9 mid-delete leaves
        writer.remove([path])
    assert [f.id for f in api.vector_stores.files.list(store.id)] == []  # a record without its document is hidden
    assert api.vector_stores.files.delete(done.id, vector_store_id=store.id).deleted
    assert done.id not in json.loads((folder / "vector_store_files.json").read_text())["files"]


def test_the_same_bytes_attached_twice_are_two_files(url: str, registry: IndexRegistry) -> None:
    api = client(url)
    store = api.vector_stores.create(name="twice")
    small = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}}
    a = api.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("earth.txt", long_text()), attributes={"team": "a"}
    )
    b = api.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("earth.txt", long_text()),
        chunking_strategy=small,  # type: ignore[arg-type]
    )
    assert a.id != b.id and a.status == b.status == "completed"
    assert api.vector_stores.files.retrieve(a.id, vector_store_id=store.id).attributes == {"team": "a"}
    assert api.vector_stores.files.retrieve(b.id, vector_store_id=store.id).attributes == {}
    folder = registry.settings.vector_store_root / store.id
    own = {f.id: stored_passages(folder, f"/{f.id}/earth.txt") for f in (a, b)}
    assert max(p.chunk.tokens for p in own[a.id]) > 100 >= max(p.chunk.tokens for p in own[b.id])  # each its chunking
    team_a = {"key": "team", "type": "eq", "value": "a"}
    found = api.vector_stores.search(store.id, query="glaciers", filters=team_a)  # type: ignore[arg-type]
    assert {r.file_id for r in found} == {a.id}

    again = api.vector_stores.files.create_and_poll(  # attached again: made anew, as asked now
        file_id=b.id, vector_store_id=store.id, attributes={"team": "b"}, chunking_strategy={"type": "auto"}
    )
    assert again.status == "completed" and again.attributes == {"team": "b"}
    assert max(p.chunk.tokens for p in stored_passages(folder, f"/{b.id}/earth.txt")) > 100
    assert sorted(f.id for f in api.vector_stores.files.list(store.id)) == sorted([a.id, b.id])

    api.vector_stores.files.delete(a.id, vector_store_id=store.id)
    assert {r.file_id for r in api.vector_stores.search(store.id, query="glaciers")} == {b.id}
    assert [f.id for f in api.vector_stores.files.list(store.id)] == [b.id]
    content = folder / "uploads" / hashlib.sha256(long_text()).hexdigest()
    assert not (content / a.id).exists() and (content / b.id / "earth.txt").is_file()


def test_orphan_uploads_of_store_files_are_removed_at_open(tmp_path: Path, model_cache: Path) -> None:
    with served(tmp_path / "ix", model_cache) as url:
        api = client(url)
        store = api.vector_stores.create(name="orphans")
        done = api.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("tea.md", TEA.encode()))
    content = (
        Settings(index_dir=tmp_path / "ix").vector_store_root
        / store.id
        / "uploads"
        / hashlib.sha256(TEA.encode()).hexdigest()
    )
    stray = content / ("file-" + "0" * 24) / "tea.md"  # stored, then killed before its publish
    stray.parent.mkdir()
    stray.write_bytes(TEA.encode())
    (content / done.id / ".upload.1.2.tmp").write_bytes(b"half")
    with served(tmp_path / "ix", model_cache) as url:
        assert client(url).vector_stores.files.retrieve(done.id, vector_store_id=store.id).status == "completed"
    assert not stray.parent.exists() and [p.name for p in (content / done.id).iterdir()] == ["tea.md"]


def test_update_attributes_is_seen_by_filters(url: str) -> None:
    api = client(url)
    store = api.vector_stores.create(name="attributes")
    done = api.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("tea.md", TEA.encode()), attributes={"team": "a"}
    )
    b = {"key": "team", "type": "eq", "value": "b"}
    assert api.vector_stores.search(store.id, query="tea", filters=b).data == []  # type: ignore[arg-type]
    changed = api.vector_stores.files.update(done.id, vector_store_id=store.id, attributes={"team": "b"})
    assert changed.attributes == {"team": "b"}
    assert [r.file_id for r in api.vector_stores.search(store.id, query="tea", filters=b)] == [done.id]  # type: ignore[arg-type]


def test_a_cli_index_is_a_vector_store_with_doc_ids(tmp_path: Path, model_cache: Path, run: Any) -> None:
    folder = tmp_path / "ix"
    assert run("ingest", str(DATA / "sample"), "--index", str(folder)).exit_code == 0
    with served(folder, model_cache) as url:
        api = client(url)
        store = api.vector_stores.retrieve("default")
        assert store.name == "default" and store.file_counts.completed == store.file_counts.total == len(
            list((DATA / "sample").iterdir())
        )
        files = list(api.vector_stores.files.list("default", limit=3))
        assert len(files) == store.file_counts.total and all(re.fullmatch(r"doc-\d+", f.id) for f in files)
        found = api.vector_stores.search("default", query="how do plants turn light into sugar", max_num_results=3)
        assert found.data[0].file_id.startswith("doc-") and found.data[0].filename == "photosynthesis.md"
        content = list(api.vector_stores.files.content(found.data[0].file_id, vector_store_id="default"))
        assert any("light" in (c.text or "") for c in content)
        with pytest.raises(openai.NotFoundError):
            api.files.retrieve(found.data[0].file_id)  # not a File: it did not come through /v1/files
        with pytest.raises(openai.BadRequestError, match="not deleted over the API"):
            api.vector_stores.delete("default")
        assert store_exists(folder)


def test_searching_an_index_not_made_over_v1_writes_nothing_into_it(
    tmp_path: Path, model_cache: Path, sample_index: Path
) -> None:
    folder = tmp_path / "ix"
    shutil.copytree(sample_index, folder)
    manifest = json.loads((folder / "config.json").read_text())
    manifest["created_at"] = "2020-01-01T00:00:00+00:00"  # long enough ago for a search to count as activity
    (folder / "config.json").write_text(json.dumps(manifest))
    with served(folder, model_cache) as url:
        api = client(url)
        before = api.vector_stores.retrieve("default").last_active_at
        assert api.vector_stores.search("default", query="photosynthesis").data
        after = api.vector_stores.retrieve("default").last_active_at
        assert before is not None and after is not None and after > before + 86_400  # kept in memory
    assert not (folder / "vector_store.json").exists()
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_keys_reach_only_their_stores(tmp_path: Path, model_cache: Path, sample_index: Path) -> None:
    folder = tmp_path / "ix"
    shutil.copytree(sample_index, folder)
    keys = f"{ADMIN},{SCOPED}:rw:default,{READER}:ro"
    with served(folder, model_cache, api_keys=keys) as url:
        mine = client(url).vector_stores.create(name="admin's")
        scoped, reader = client(url, SCOPED), client(url, READER)
        with pytest.raises(openai.PermissionDeniedError):
            scoped.vector_stores.retrieve(mine.id)
        with pytest.raises(openai.PermissionDeniedError):
            scoped.vector_stores.search(mine.id, query="tea")
        with pytest.raises(openai.PermissionDeniedError):
            scoped.vector_stores.files.list(mine.id)
        with pytest.raises(openai.PermissionDeniedError):
            scoped.vector_stores.create(name="mine")
        assert [s.id for s in scoped.vector_stores.list()] == ["default"]
        assert scoped.vector_stores.search("default", query="tea").data is not None
        with pytest.raises(openai.PermissionDeniedError):
            reader.vector_stores.create(name="read-only")
        with pytest.raises(openai.PermissionDeniedError):
            reader.vector_stores.update(mine.id, name="x")
        assert reader.vector_stores.retrieve(mine.id).name == "admin's"
        with pytest.raises(openai.AuthenticationError):
            client(url, "not-a-key-0123456789").vector_stores.list()


def test_a_restarted_server_keeps_stores_files_and_statuses(tmp_path: Path, model_cache: Path) -> None:
    folder = tmp_path / "ix"
    with served(folder, model_cache) as url:
        api = client(url)
        store = api.vector_stores.create(name="kept", metadata={"owner": "me"})
        done = api.vector_stores.files.upload_and_poll(
            vector_store_id=store.id, file=("tea.md", TEA.encode()), attributes={"team": "a"}
        )
        bad = api.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("x.bin", b"\x00\x01"))
        batch = api.vector_stores.file_batches.upload_and_poll(store.id, files=[("earth.txt", long_text(10))])
        # Queued and not waited for: the server may stop before or while the worker ingests them.
        late = [api.files.create(file=(f"late{n}.txt", long_text(60 + n)), purpose="assistants") for n in range(2)]
        for file in late:
            api.vector_stores.files.create(vector_store_id=store.id, file_id=file.id)
        seeded = api.files.create(file=("seeded.md", TEA.replace("Tea", "Seeded tea").encode()), purpose="assistants")
        before = {f.id: (f.status, f.attributes) for f in api.vector_stores.files.list(store.id)}
    # What a server stopped before it ingested a file leaves, whatever the timing above did: its record in progress.
    state_file = Settings(index_dir=folder).vector_store_root / store.id / "vector_store_files.json"
    state = json.loads(state_file.read_text())
    record = {**state["files"][done.id], "id": seeded.id, "filename": "seeded.md", "status": "in_progress"}
    state["files"][seeded.id] = {**record, "path": None, "usage_bytes": 0, "attributes": {"seeded": True}}
    state_file.write_text(json.dumps(state))
    before[seeded.id] = ("in_progress", {"seeded": True})
    with served(folder, model_cache) as url:
        api = client(url)
        kept = api.vector_stores.retrieve(store.id)
        assert (kept.name, kept.metadata, kept.created_at) == ("kept", {"owner": "me"}, store.created_at)
        for file in [*late, seeded]:
            assert api.vector_stores.files.poll(file.id, vector_store_id=store.id).status == "completed"
        seeded_filter = {"key": "seeded", "type": "eq", "value": True}
        found = api.vector_stores.search(store.id, query="seeded tea", filters=seeded_filter)  # type: ignore[arg-type]
        assert [r.file_id for r in found] == [seeded.id]
        after = {f.id: (f.status, f.attributes) for f in api.vector_stores.files.list(store.id)}
        assert (
            set(after)
            == set(before)
            == {
                done.id,
                bad.id,
                seeded.id,
                *[f.id for f in late],
                *[f.id for f in batch_files(api, store.id, batch.id)],
            }
        )
        assert after[done.id] == ("completed", {"team": "a"}) and after[bad.id][0] == "failed"
        assert api.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id).file_counts.completed == 1
        assert [r.file_id for r in api.vector_stores.search(store.id, query="black tea", max_num_results=1)] == [
            done.id
        ]


def batch_files(api: OpenAI, store: str, batch: str) -> list[Any]:
    return list(api.vector_stores.file_batches.list_files(batch, vector_store_id=store))


def readme_script() -> str:
    """The first Python block of the README's "OpenAI's retrieval API" section."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## OpenAI's retrieval API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the section opens with a Python example"
    return match.group(1)


def test_the_readme_script_runs_unchanged(
    tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = readme_script()
    assert script.count('base_url="http://127.0.0.1:8000/v1"') == 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    with served(tmp_path / "ix", model_cache) as url:
        # The one change: the port this test's server listens on, instead of 8000.
        exec(compile(script.replace("http://127.0.0.1:8000/v1", url), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "handbook.md" in printed and "25 days" in printed


HANDBOOK = """# Staff handbook

## Leave

New staff get 25 days of paid leave a year, plus public holidays.

## Expenses

Claim travel expenses within 30 days, with receipts.
"""
