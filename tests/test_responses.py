"""`POST /v1/responses` with the file_search tool, through the official `openai` SDK against a served app.

The vector stores are real indexes: the default one (the sample folder) and a second one under the
index root; answers come from the extractive answerer, or from the OpenAI simulator as the chat model.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from ingest import Folders, ingest, open_index
from search import Settings
from search.http import create_app
from search.http.v1.responses.text import Mark, MarkerStripper, strip_markers
from tests.support.openai_sim import create_simulator, reconfigure
from tests.support.openai_sim_state import SimulatorConfig, SimulatorState

from .conftest import DATA, ServerThread

KEY = "sk-responses-test"
SECOND = "second"  # the second vector store: an index under the server's index root
QUESTION = "Who invented the printing press?"
FILE_SEARCH = {"type": "file_search", "vector_store_ids": ["default"]}
STREAM_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.file_search_call.in_progress",
    "response.file_search_call.searching",
    "response.file_search_call.completed",
    "response.output_item.done",
    "response.output_item.added",
    "response.content_part.added",
]
STREAM_END = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """The default index (the sample folder) and an index root holding the second store (two files)."""
    base = tmp_path_factory.mktemp("responses")
    more = base / "more"
    more.mkdir()
    (more / "volcanoes.txt").write_text(
        "Volcanoes\n\nA volcano erupts when magma rises through the crust. Basalt lava flows are runny and hot.\n"
    )
    (more / "glaciers.md").write_text("# Glaciers\n\nGlaciers carve valleys as the ice slowly moves downhill.\n")
    for folder, source in ((base / "ix", DATA / "sample"), (base / "root" / SECOND, more)):
        index, chunking = open_index(folder, embedder, None)
        assert index is not None
        ingest(index, embedder, Folders([source]), chunking=chunking)
        index.close()
    return base / "ix", base / "root"


@pytest.fixture(scope="module")
def sim() -> Iterator[ServerThread]:
    with ServerThread(create_simulator(SimulatorConfig(api_key=KEY))) as server:
        yield server


def configure(sim: ServerThread, **config: object) -> SimulatorState:
    """A fresh simulator state (the running server reads it on every request)."""
    return reconfigure(sim.app, api_key=KEY, **config)


def serve(folders: tuple[Path, Path], model_cache: Path, **settings: Any) -> ServerThread:
    index_dir, root = folders
    return ServerThread(create_app(Settings(index_dir=index_dir, index_root=root, cache_dir=model_cache, **settings)))


@pytest.fixture(scope="module")
def extractive(folders: tuple[Path, Path], model_cache: Path) -> Iterator[OpenAI]:
    """The SDK against a server with no chat model."""
    with serve(folders, model_cache) as server:
        yield OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def chat(folders: tuple[Path, Path], model_cache: Path, sim: ServerThread) -> Iterator[OpenAI]:
    """The SDK against a server whose chat model is the simulator's gpt-4o-mini."""
    options = {"openai_api_key": KEY, "openai_base_url": f"{sim.url}/v1", "chat_model": "openai/gpt-4o-mini"}
    with serve(folders, model_cache, **options) as server:
        yield OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def citations(response: Any) -> list[Any]:
    [message] = [item for item in response.output if item.type == "message"]
    [part] = message.content
    return list(part.annotations)


def test_extractive_answer_cites_the_file_it_quotes(extractive: OpenAI) -> None:
    response = extractive.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[FILE_SEARCH])
    assert response.status == "completed" and response.object == "response" and response.id.startswith("resp_")
    assert response.model == "semsearch-extractive"  # what answered, whatever the request named
    call, message = response.output
    assert call.type == "file_search_call" and call.status == "completed" and call.queries == [QUESTION]
    assert call.results is None  # not asked for with `include`
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    text = response.output_text
    assert "Gutenberg" in text and "[1]" not in text
    cited = citations(response)
    assert cited and {c.filename for c in cited} >= {"printing-press.html"}
    for citation in cited:
        assert citation.type == "file_citation" and citation.file_id.startswith("doc-")
        assert 0 < citation.index <= len(text) and text[citation.index :][:1] in ("", " ")  # after a quoted sentence
    assert response.usage is not None and response.usage.total_tokens == 0  # no language model was called


def test_include_gives_the_search_results(extractive: OpenAI) -> None:
    response = extractive.responses.create(
        model="gpt-4o-mini",
        input=[{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}],
        tools=[{**FILE_SEARCH, "max_num_results": 3}],
        include=["file_search_call.results"],
    )
    results = response.output[0].results
    assert results is not None and 1 <= len(results) <= 3
    assert results[0].filename == "printing-press.html" and "Gutenberg" in (results[0].text or "")
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert all(0 <= (r.score or 0) <= 1 and r.file_id and r.file_id.startswith("doc-") for r in results)
    cited = {c.file_id for c in citations(response)}
    assert cited <= {r.file_id for r in results}


def test_filters_in_the_tool_narrow_the_search(extractive: OpenAI) -> None:
    only_markdown = {"type": "eq", "key": "type", "value": "markdown"}
    response = extractive.responses.create(
        model="gpt-4o-mini",
        input="How do plants use light?",
        tools=[{**FILE_SEARCH, "filters": only_markdown}],
        include=["file_search_call.results"],
    )
    results = response.output[0].results
    assert results and {r.filename for r in results} <= {"photosynthesis.md", "vector-search.md"}
    assert {c.filename for c in citations(response)} == {"photosynthesis.md"}


def test_several_vector_stores_are_searched_together(extractive: OpenAI) -> None:
    response = extractive.responses.create(
        model="gpt-4o-mini",
        input="What happens when a volcano erupts?",
        tools=[{"type": "file_search", "vector_store_ids": ["default", SECOND], "max_num_results": 5}],
        include=["file_search_call.results"],
    )
    results = response.output[0].results
    assert results and results[0].filename == "volcanoes.txt"
    assert "magma" in response.output_text and "volcanoes.txt" in {c.filename for c in citations(response)}
    assert response.tools[0].vector_store_ids == ["default", SECOND]  # type: ignore[union-attr]


def test_stored_responses_can_be_retrieved(extractive: OpenAI) -> None:
    response = extractive.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[FILE_SEARCH])
    assert extractive.responses.retrieve(response.id).output_text == response.output_text
    unstored = extractive.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[FILE_SEARCH], store=False)
    with pytest.raises(openai.NotFoundError):
        extractive.responses.retrieve(unstored.id)


def test_streamed_events_come_in_openai_order(extractive: OpenAI) -> None:
    stream = extractive.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[FILE_SEARCH], stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[: len(STREAM_ORDER)] == STREAM_ORDER and kinds[-len(STREAM_END) :] == STREAM_END
    assert [e.sequence_number for e in events] == list(range(len(events)))
    middle = kinds[len(STREAM_ORDER) : -len(STREAM_END)]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert middle == ["response.output_text.delta"] * len(deltas) + ["response.output_text.annotation.added"] * len(
        added
    )
    final = events[-1].response  # type: ignore[union-attr]
    assert "".join(d.delta for d in deltas) == final.output_text
    assert added and [a.annotation.to_dict() for a in added] == [c.to_dict() for c in citations(final)]


def test_chat_answer_with_checked_citations(chat: OpenAI, sim: ServerThread) -> None:
    state = configure(
        sim, chat_script=["Gutenberg built a press with movable metal type [1]. He lived on the Moon [99]."]
    )
    response = chat.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[FILE_SEARCH])
    assert response.model == "gpt-4o-mini"
    text = "Gutenberg built a press with movable metal type. He lived on the Moon."
    assert response.output_text == text  # markers out, the one to a passage never given dropped
    [citation] = citations(response)
    assert citation.filename == "printing-press.html" and citation.index == text.index(". He")
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    [request] = state.chat_requests
    assert "[1] <passage" in request["messages"][1]["content"]


def test_chat_answer_streams_as_the_model_writes(chat: OpenAI, sim: ServerThread) -> None:
    configure(sim, chat_script=["Plants turn light into chemical energy [1]. Water evaporates [2]."])
    with chat.responses.stream(
        model="openai/gpt-4o-mini", input="How do plants use light?", tools=[FILE_SEARCH]
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1 and "".join(deltas) == final.output_text
    assert final.output_text == "Plants turn light into chemical energy. Water evaporates."
    assert final.model == "gpt-4o-mini" and [c.index for c in citations(final)] == [38, 56]


def test_an_upstream_failure_mid_stream_is_a_failed_event(chat: OpenAI, sim: ServerThread) -> None:
    configure(sim, faults=("400",))
    stream = chat.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[FILE_SEARCH], stream=True)
    events = list(stream)
    assert events[-1].type == "response.failed"
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
    assert [item.type for item in failed.output] == ["file_search_call"]
    configure(sim, faults=("400",))
    with pytest.raises(openai.InternalServerError) as raised:  # not streamed: a 502 in OpenAI's shape
        chat.responses.create(model="gpt-4o-mini", input=QUESTION, tools=[FILE_SEARCH])
    assert raised.value.status_code == 502


@pytest.mark.parametrize(
    "change, param",
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [FILE_SEARCH, {"type": "function", "name": "f", "parameters": {}}]}, "tools[1].type"),
        ({"tools": []}, "tools"),
        ({"model": "gpt-5"}, "model"),
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"conversation": "conv_123"}, "conversation"),
        ({"prompt": {"id": "pmpt_123"}}, "prompt"),
        ({"tools": [{**FILE_SEARCH, "filters": {"type": "eq", "key": "k"}}]}, "tools[0].filters"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}, "input[0].content[0]"),
        ({"include": ["message.output_text.logprobs"]}, "include[0]"),
    ],
)
def test_what_this_server_cannot_do_is_a_400(chat: OpenAI, change: dict[str, Any], param: str) -> None:
    request: dict[str, Any] = {"model": "gpt-4o-mini", "input": QUESTION, "tools": [FILE_SEARCH], **change}
    with pytest.raises(openai.BadRequestError) as raised:
        chat.responses.create(**request)
    assert raised.value.param == param and raised.value.code != "invalid_request"


def test_parameters_without_effect_here_are_accepted(extractive: OpenAI) -> None:
    """Newer SDK parameters about log-probabilities, prompt caching and context compaction change nothing here."""
    response = extractive.responses.create(
        model="gpt-4o-mini",
        input=QUESTION,
        tools=[FILE_SEARCH],
        top_logprobs=2,
        prompt_cache_retention="24h",
        context_management=[{"type": "compaction", "compact_threshold": 1000}],
    )
    assert response.status == "completed" and "Gutenberg" in response.output_text


def test_a_missing_tools_list_is_a_400_and_an_unknown_store_a_404(extractive: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        extractive.responses.create(model="gpt-4o-mini", input=QUESTION)
    assert "file_search" in raised.value.message
    with pytest.raises(openai.NotFoundError) as missing:
        extractive.responses.create(
            model="gpt-4o-mini", input=QUESTION, tools=[{"type": "file_search", "vector_store_ids": ["vs_nope"]}]
        )
    assert "vs_nope" in missing.value.message


def test_an_openai_retrieval_script_runs_unchanged(extractive: OpenAI) -> None:
    """Files uploaded to a new vector store with attributes, then a filtered file_search over it."""
    store = extractive.vector_stores.create(name="handbook")
    tea = extractive.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("tea.md", b"# Tea\n\nGreen tea is steamed or pan-fired soon after picking, which keeps it green.\n"),
        attributes={"topic": "drinks"},
    )
    extractive.vector_stores.files.upload_and_poll(
        vector_store_id=store.id,
        file=("bread.md", b"# Bread\n\nBread rises because yeast turns sugar into carbon dioxide gas.\n"),
        attributes={"topic": "baking"},
    )
    assert tea.status == "completed" and tea.id.startswith("file-")
    response = extractive.responses.create(
        model="gpt-4o-mini",
        input="Why does green tea stay green?",
        tools=[
            {
                "type": "file_search",
                "vector_store_ids": [store.id],
                "filters": {"type": "eq", "key": "topic", "value": "drinks"},
            }
        ],
        include=["file_search_call.results"],
    )
    results = response.output[0].results
    assert results and {(r.file_id, r.filename) for r in results} == {(tea.id, "tea.md")}
    assert results[0].attributes == {"topic": "drinks"}
    assert "steamed" in response.output_text
    assert {(c.file_id, c.filename) for c in citations(response)} == {(tea.id, "tea.md")}


def test_a_key_answers_only_from_the_stores_it_reaches(folders: tuple[Path, Path], model_cache: Path) -> None:
    admin, scoped = "admin-key-0123456789", "scoped-key-0123456789"
    with serve(folders, model_cache, api_keys=f"{admin},{scoped}:rw:default") as server:
        as_admin = OpenAI(base_url=f"{server.url}/v1", api_key=admin, max_retries=0)
        as_scoped = OpenAI(base_url=f"{server.url}/v1", api_key=scoped, max_retries=0)
        both = {"type": "file_search", "vector_store_ids": ["default", SECOND]}
        with pytest.raises(openai.PermissionDeniedError):
            as_scoped.responses.create(model="x", input=QUESTION, tools=[both])  # type: ignore[list-item]
        made = as_admin.responses.create(model="x", input=QUESTION, tools=[both])  # type: ignore[list-item]
        with pytest.raises(openai.NotFoundError):
            as_scoped.responses.retrieve(made.id)  # it searched a store this key does not reach
        assert as_scoped.responses.create(model="x", input=QUESTION, tools=[FILE_SEARCH]).output_text
        with pytest.raises(openai.AuthenticationError):
            OpenAI(base_url=f"{server.url}/v1", api_key="wrong-key-0123456789", max_retries=0).responses.create(
                model="x", input=QUESTION, tools=[FILE_SEARCH]
            )


def test_markers_leave_the_text_and_mark_where_they_stood() -> None:
    assert strip_markers("A press [1]. The Moon [9].", 9) == ("A press. The Moon.", [Mark(7, (1,)), Mark(17, (9,))])
    assert strip_markers("Both. [1][2, 3] Next [2-3]", 3) == (
        "Both. Next",
        [Mark(5, (1,)), Mark(5, (2, 3)), Mark(10, (2, 3))],
    )
    assert strip_markers("Not markers: [x], [12a] and an open [", 20) == ("Not markers: [x], [12a] and an open [", [])


def test_brackets_of_the_text_itself_stay() -> None:
    """Only the numbers of passages the answer was drawn from are markers: an index or a year is text."""
    text = "Read array[0] first, as in [2020] and [4, 5] [1]."
    assert strip_markers(text, 3) == ("Read array[0] first, as in [2020] and [4, 5].", [Mark(44, (1,))])


@pytest.mark.parametrize(
    "text",
    [
        "Gutenberg built a press [1]. He lived on the Moon [99].",
        "a [1][2] b. [3, 4] c [2-3]. [x] d [",
        "x [1",
        "array[0] in [2020] [1]",
    ],
)
def test_markers_come_out_the_same_however_the_stream_cuts_the_text(text: str) -> None:
    whole = strip_markers(text, 4)
    rng = random.Random(text)
    for _ in range(200):
        cuts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, min(6, len(text)))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        stripper = MarkerStripper(4)
        streamed = "".join(stripper.feed(piece) for piece in pieces) + stripper.finish()
        assert (streamed, stripper.marks) == whole, pieces
