"""OpenAI's Vector stores API (`/v1/vector_stores`...): a vector store is an index, its id the index's name.

Stores made here live under `settings.vector_store_root` as `vs_` + 24 hex; every other index the
server serves (the default one, --indexes, the index root) is a vector store too, but only stores
made here can be deleted here. Files and batches are in `file_routes.py`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from indexes import store_exists

from ...auth import writes
from ...error_shapes import BadParam
from ...registry import IndexRegistry
from ...schemas import errors, returns
from ..embeddings import OpenAIError
from ..files import file_store
from .attach import allowed, attach, check_metadata, chunking_for, registry_of
from .file_routes import add_file_routes
from .objects import BadRequest, listed_object, listed_store, page, store_object, store_state
from .schemas import (
    Deleted,
    NewVectorStore,
    SearchResultsPage,
    StoreSearch,
    VectorStore,
    VectorStoreChange,
    VectorStoreList,
)
from .search import rewrite_query, search_stores
from .state import StoreState, lock, read_store, touch, write_store
from .worker import VectorStoreWorker

Order = Literal["asc", "desc"]
_TRASH = ".deleted-"  # a store being deleted is renamed to this first: never half a store on the list
_NONE = StoreState("", 0, 0)  # what a folder without vector_store.json reads as


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the worker that ingests attached files (resuming what a previous run left in progress)."""
    registry: IndexRegistry = app.state.registry
    root = registry.settings.vector_store_root
    for trash in root.glob(f"{_TRASH}*") if root.is_dir() else ():
        shutil.rmtree(trash, ignore_errors=True)  # a delete a crash interrupted
    for folder in root.glob("vs_*") if root.is_dir() else ():
        if _unfinished(folder):
            shutil.rmtree(folder, ignore_errors=True)  # a create a crash interrupted: no index, so no data
    app.state.vector_store_worker = VectorStoreWorker(registry, app.state.files).start()
    yield
    app.state.vector_store_worker.close()


def _unfinished(folder: Path) -> bool:
    """A store's folder with its state but no index: POST /v1/vector_stores stopped between the two."""
    try:
        return not store_exists(folder) and read_store(folder, _NONE).created_over_v1
    except (OSError, ValueError, TypeError):
        return False


def vector_stores_router() -> APIRouter:
    """The vector stores, their search, their files and their file batches."""
    # 400: refused (OpenAI's BadRequestError); 404: no such store, file or batch; 409: the index is busy;
    # 502/503: a remote embedding model failed (its searches and ingests embed through it)
    responses = errors(400, 404, 409, 502, 503, model=OpenAIError)
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], lifespan=_lifespan, responses=responses)
    _add_store_routes(router)
    _add_search_route(router)
    add_file_routes(router)
    return router


def _add_store_routes(router: APIRouter) -> None:
    @router.post(
        "/vector_stores",
        summary="Create a vector store (a new index), optionally attaching files",
        dependencies=[Depends(writes)],
        **returns(VectorStore),
    )
    def create(request: Request, body: NewVectorStore) -> dict[str, Any]:
        registry = registry_of(request)
        name = "vs_" + secrets.token_hex(12)
        allowed(request, name, creating=True)
        metadata = check_metadata(body.metadata or {})
        chunking_for(body.chunking_strategy, (0, 0), 4096)  # a bad one is a 400 before the store is made
        for file_id in body.file_ids or ():
            file_store(request).get(file_id)  # an unknown file is a 404 before the store is made
        root = registry.settings.vector_store_root
        now = int(time.time())
        expires = body.expires_after.model_dump() if body.expires_after else None
        state = StoreState(body.name or name, now, now, metadata, body.description, expires, created_over_v1=True)
        (root / name).mkdir(parents=True)
        write_store(root / name, state)  # before the manifest makes it an index: never a store without its state
        try:
            registry.create(name, None, root=root)
        except BaseException:
            shutil.rmtree(root / name, ignore_errors=True)
            raise
        if body.file_ids:
            items = [(file_id, None, body.chunking_strategy) for file_id in body.file_ids]
            try:
                attach(request, name, items, batch_id=None)
            except BaseException:  # nothing was queued: a failed create leaves no store behind
                registry.forget(name)
                shutil.rmtree(root / name, ignore_errors=True)
                raise
        return store_object(registry, name)

    @router.get(
        "/vector_stores", summary="The vector stores this key may use, a page at a time", **returns(VectorStoreList)
    )
    def list_stores(
        request: Request,
        limit: int = Query(20, ge=1, le=100),
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> dict[str, Any]:
        registry = registry_of(request)
        stores = []  # ordered by what the folders say; only the stores of the page are opened
        for name, folder in registry.folders().items():
            usable = request.state.principal.may_use(name) and store_exists(folder)
            if usable and (listed := listed_store(name, folder)) is not None:
                stores.append(listed)
        listing = page(stores, limit=limit, order=order, after=after, before=before)
        opened = [listed_object(registry, store["id"]) for store in listing["data"]]
        return {**listing, "data": [store for store in opened if store is not None]}

    @router.get("/vector_stores/{vector_store_id}", summary="A vector store", **returns(VectorStore))
    def retrieve(request: Request, vector_store_id: str) -> dict[str, Any]:
        allowed(request, vector_store_id)
        return store_object(registry_of(request), vector_store_id)

    @router.post(
        "/vector_stores/{vector_store_id}",
        summary="Change a vector store's name, metadata or expiry",
        dependencies=[Depends(writes)],
        **returns(VectorStore),
    )
    def modify(request: Request, vector_store_id: str, body: VectorStoreChange) -> dict[str, Any]:
        allowed(request, vector_store_id)
        registry = registry_of(request)
        folder, _ = store_state(registry, vector_store_id)
        given = body.model_fields_set
        with lock(folder):
            _, state = store_state(registry, vector_store_id)
            if "name" in given and body.name is not None:
                state = replace(state, name=body.name)
            if "metadata" in given:
                state = replace(state, metadata=check_metadata(body.metadata or {}))
            if "expires_after" in given:
                expires = body.expires_after.model_dump() if body.expires_after else None
                state = replace(state, expires_after=expires)
            write_store(folder, state)
        return store_object(registry, vector_store_id)

    @router.delete(
        "/vector_stores/{vector_store_id}",
        summary="Delete a vector store made over /v1 (its index folder goes too)",
        dependencies=[Depends(writes)],
        **returns(Deleted),
    )
    def delete(request: Request, vector_store_id: str) -> dict[str, Any]:
        allowed(request, vector_store_id)
        _delete_store(request, vector_store_id)
        return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


def _delete_store(request: Request, name: str) -> None:
    """Remove a store's index folder, only for stores made over /v1 under the vector-store root."""
    registry = registry_of(request)
    folder, state = store_state(registry, name)
    root = registry.settings.vector_store_root
    if not state.created_over_v1 or folder.parent.resolve() != root.resolve():
        raise BadRequest(
            f"{name!r} is an index this server was given (not a vector store made with POST /v1/vector_stores), "
            "so it is not deleted over the API: its folder may be the only copy of someone's data. "
            "Remove its documents one by one, or stop the server and delete the folder yourself"
        )
    with registry.write_lock(name):
        registry.service(name).index.drop()  # Milvus's collections (none for a local index); may be tried again
        registry.forget(name)  # closed first: Milvus Lite would write its file again under the old name
        trash = root / f"{_TRASH}{name}"
        os.replace(folder, trash)  # gone from the list at once, even if the removal below is interrupted
        shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):
        trash.rmdir()


def _add_search_route(router: APIRouter) -> None:
    @router.post(
        "/vector_stores/{vector_store_id}/search",
        summary="The passages of a vector store that best match a query (hybrid, with attribute filters)",
        **returns(SearchResultsPage),
    )
    def search(request: Request, vector_store_id: str, body: StoreSearch) -> dict[str, Any]:
        allowed(request, vector_store_id)
        registry = registry_of(request)
        folder, state = store_state(registry, vector_store_id)
        if state.expired():
            raise BadRequest(f"vector store {vector_store_id!r} has expired: extend expires_after to use it again")
        queries = list(body.queries())
        if not queries or not all(q.strip() for q in queries) or len(queries) > 10:
            raise BadParam("query: give a non-empty string, or a list of 1 to 10 non-empty strings", "query")
        if body.rewrite_query:
            queries = [rewrite_query(q) for q in queries]
        options = body.ranking_options
        hits = search_stores(
            registry,
            [vector_store_id],
            queries,
            max_num_results=body.max_num_results,
            filters=body.filters,
            score_threshold=options.score_threshold if options else None,
            ranker=options.ranker if options else "auto",
        )
        touch(folder, state, int(time.time()))
        return {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [hit.as_result() for hit in hits],
            "has_more": False,
            "next_page": None,
        }
