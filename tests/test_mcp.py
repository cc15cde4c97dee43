"""The MCP server through the official `mcp` client: `semsearch mcp` over stdio, and `/mcp` on a served app."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from search import Settings
from search.http import create_app
from search.service import SearchService

from .conftest import ServerThread

QUESTION = "who invented the printing press?"
TOOLS = {"search", "ask", "list_documents", "get_document", "fetch"}
KEY, SCOPED = "sk-mcp-test-key-0001", "sk-mcp-test-key-0002"  # every index; only `second`
Check = Callable[[ClientSession], Awaitable[None]]


@pytest.fixture(scope="module")
def index_copy(sample_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample index, so the MCP server's process may open it as its own."""
    copy = tmp_path_factory.mktemp("mcp") / "ix"
    shutil.copytree(sample_index, copy)
    return copy


@pytest.fixture(scope="module")
def keyed_server(index_copy: Path, model_cache: Path) -> Iterator[ServerThread]:
    """`semsearch serve` with API keys and a second index (another copy) for the scoped key."""
    second = index_copy.parent / "second"
    shutil.copytree(index_copy, second)
    settings = Settings(
        index_dir=index_copy,
        cache_dir=model_cache,
        named_indexes={"second": second},
        api_keys=f"{KEY}:ro,{SCOPED}:ro:second",
    )
    with ServerThread(create_app(settings)) as server:
        yield server


@asynccontextmanager
async def stdio_session(index: Path, model_cache: Path) -> AsyncIterator[ClientSession]:
    script = Path(sys.executable).with_name("semsearch")
    command, args = (
        (str(script), []) if script.exists() else (sys.executable, ["-c", "import search.cli as c; c.main()"])
    )
    params = StdioServerParameters(
        command=command, args=[*args, "mcp", "--index", str(index)], env={"SEMSEARCH_CACHE_DIR": str(model_cache)}
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool's structured result (the call must succeed, and its text block say the same)."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def tool_error(session: ClientSession, tool: str, arguments: dict[str, Any]) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error
    text = result.content[0]
    assert text.type == "text"
    return text.text


async def check_tools(session: ClientSession) -> None:
    """Every tool listed with a described JSON schema; each one run on the sample corpus."""
    listed = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(listed) == TOOLS
    for tool in listed.values():
        assert tool.description and tool.input_schema["type"] == "object"
        assert all(p.get("description") for p in tool.input_schema["properties"].values()), tool.name
    assert listed["search"].input_schema["required"] == ["query"]
    assert listed["search"].input_schema["properties"]["mode"]["enum"] == ["hybrid", "dense", "lexical"]
    assert listed["fetch"].input_schema["required"] == ["id"]

    found = await call(session, "search", {"query": QUESTION, "k": 3})
    first = found["results"][0]
    assert len(found["results"]) == 3
    assert first["path"].endswith("printing-press.html") and first["title"] == "The History of the Printing Press"
    assert first["id"] == f"passage:{first['chunk_id']}" and "page" in first and "Gutenberg" in first["text"]
    lexical = await call(session, "search", {"query": "Gutenberg", "mode": "lexical", "k": 1})
    assert lexical["results"][0]["document_id"] == first["document_id"]
    pdfs = await call(session, "search", {"query": "water", "filters": {"key": "type", "type": "eq", "value": "pdf"}})
    assert pdfs["results"] and {r["path"][-4:] for r in pdfs["results"]} == {".pdf"}
    assert any(r["page"] for r in pdfs["results"])

    answer = await call(session, "ask", {"question": QUESTION})
    assert "Gutenberg" in answer["answer"] and "[1]" in answer["answer"]
    cited = answer["citations"][0]
    assert cited["number"] == 1 and cited["path"].endswith("printing-press.html") and cited["quote"]
    assert cited["id"].startswith("passage:") and "page" in cited

    await check_documents(session, first)


async def check_documents(session: ClientSession, hit: dict[str, Any]) -> None:
    """list_documents pages through all ten; get_document and fetch return the texts the passages hold."""
    pages = [await call(session, "list_documents", {"limit": 4})]
    while pages[-1]["has_more"]:
        pages.append(await call(session, "list_documents", {"limit": 4, "after": pages[-1]["last_id"]}))
    listed = [d for page in pages for d in page["documents"]]
    assert len(pages) == 3 and len(listed) == 10 and len({d["id"] for d in listed}) == 10
    pdf = await call(session, "list_documents", {"type": "pdf"})
    assert sorted(Path(d["path"]).name for d in pdf["documents"]) == ["timekeeping.pdf", "water-cycle.pdf"]

    document = await call(session, "get_document", {"id": hit["document_id"]})
    assert document["path"] == hit["path"] and document["chunks"] >= 1 and not document["truncated"]
    assert hit["text"] in document["text"]
    short = await call(session, "get_document", {"id": hit["document_id"], "max_chars": 20})
    assert short["truncated"] and short["text"] == document["text"][:20]

    passage = await call(session, "fetch", {"id": hit["id"]})
    assert (passage["id"], passage["title"], passage["text"]) == (hit["id"], hit["title"], hit["text"])
    assert passage["url"] == Path(hit["path"]).as_uri() and passage["metadata"]["path"] == hit["path"]
    whole = await call(session, "fetch", {"id": f"document:{hit['document_id']}"})
    assert whole["text"] == document["text"] and whole["metadata"]["type"] == "html"


async def check_errors(session: ClientSession) -> None:
    """Bad arguments are tool errors saying what to fix; the server answers the next call."""
    assert "k: Input should be greater than or equal to 1" in await tool_error(
        session, "search", {"query": "x", "k": 0}
    )
    assert "kk: not an argument" in await tool_error(session, "search", {"query": "x", "kk": 3})
    assert "query: Field required" in await tool_error(session, "search", {})
    assert "mode" in await tool_error(session, "search", {"query": "x", "mode": "fuzzy"})
    assert "filters" in await tool_error(session, "search", {"query": "x", "filters": {"type": "eq"}})
    assert "passage:<chunk id>" in await tool_error(session, "fetch", {"id": "12"})
    assert "no passage 999999" in await tool_error(session, "fetch", {"id": "passage:999999"})
    assert "no document 999999" in await tool_error(session, "get_document", {"id": 999999})
    assert "no tool named 'nope'" in await tool_error(session, "nope", {})
    assert (await call(session, "search", {"query": "lentil soup", "k": 1}))["results"]


def test_stdio_tools(index_copy: Path, model_cache: Path) -> None:
    async def main() -> None:
        async with stdio_session(index_copy, model_cache) as session:
            await check_tools(session)
            await check_errors(session)
            assert "serves one index" in await tool_error(session, "search", {"query": "x", "index": "other"})

    anyio.run(main)


def test_stdio_matches_the_service(index_copy: Path, model_cache: Path, embedder: Any) -> None:
    """The tool's results are the service's, in the same order."""
    service = SearchService.open(index_copy, cache_dir=model_cache)
    try:
        expected = [f"passage:{h.chunk_id}" for h in service.search("how do plants make sugar", 5)]
    finally:
        service.close()

    async def main() -> list[str]:
        async with stdio_session(index_copy, model_cache) as session:
            found = await call(session, "search", {"query": "how do plants make sugar", "k": 5})
            return [r["id"] for r in found["results"]]

    assert anyio.run(main) == expected


def test_http_tools_with_a_key(keyed_server: ServerThread) -> None:
    async def main() -> None:
        async with http_session(keyed_server.url, KEY) as session:
            await check_tools(session)
            await check_errors(session)
            second = await call(session, "search", {"query": QUESTION, "k": 1, "index": "second"})
            assert second["results"][0]["path"].endswith("printing-press.html")
            assert "no index" in await tool_error(session, "search", {"query": "x", "index": "missing"})

    anyio.run(main)


def test_http_key_scope_applies_to_the_index_argument(keyed_server: ServerThread) -> None:
    async def main() -> None:
        async with http_session(keyed_server.url, SCOPED) as session:
            refused = await tool_error(session, "search", {"query": QUESTION})
            assert "no access to the index 'default'; the indexes it may use: 'second'" in refused
            found = await call(session, "search", {"query": QUESTION, "index": "second"})
            assert found["results"][0]["path"].endswith("printing-press.html")

    anyio.run(main)


@pytest.mark.parametrize("key", [None, "sk-mcp-not-a-key-0000"])
def test_http_without_a_valid_key_is_a_401(keyed_server: ServerThread, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = httpx.post(f"{keyed_server.url}/mcp", json=body, headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["type"] == "unauthorized"

    async def main() -> None:
        async with http_session(keyed_server.url, key):
            pass

    with pytest.raises(ExceptionGroup) as refused:  # the client's task group fails with the SDK's error
        anyio.run(main)
    assert refused.group_contains(MCPError, match="error response", depth=2)


def test_http_without_keys_configured(index_copy: Path, model_cache: Path) -> None:
    """An open server (no keys): the client needs no header."""
    with ServerThread(create_app(Settings(index_dir=index_copy, cache_dir=model_cache))) as server:

        async def main() -> dict[str, Any]:
            async with http_session(server.url, None) as session:
                return await call(session, "ask", {"question": QUESTION})

        answer = anyio.run(main)
    assert answer["citations"][0]["path"].endswith("printing-press.html")


def test_stdio_without_an_index_says_so(run: Any, tmp_path: Path) -> None:
    """No index at --index: one line naming the command to run, exit code 2, before any MCP message."""
    result = run("mcp", "--index", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert "no index at" in result.output and "semsearch ingest" in result.output
