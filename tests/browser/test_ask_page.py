"""The ask and document views in Chromium: a streamed answer, citations that reveal their passage, PDFs at a page."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.support.browser import Opener
from tests.support.openai_sim import reconfigure

from ..conftest import ServerThread
from .conftest import SIM_KEY, Library

QUESTION = "Who invented the printing press?"
SCRIPT = "Johannes Gutenberg built a printing press with movable metal type around 1440 [1]."
HIGHLIGHTED = re.compile(r"\bhighlighted\b")
# Records, in order, what happens inside #answer: aria-busy flips (with the old value) and nodes added.
WATCH_ANSWER = """() => {
  window.answerLog = [];
  const inAnswer = n => !!(n && (n.nodeType === 1 ? n : n.parentElement)?.closest('#answer'));
  new MutationObserver(records => {
    for (const r of records) {
      if (!inAnswer(r.target)) continue;
      if (r.type === 'attributes') { window.answerLog.push({kind: 'busy', old: r.oldValue}); continue; }
      if (r.type === 'characterData') { window.answerLog.push({kind: 'text'}); continue; }
      for (const n of r.addedNodes) {
        const citation = n.nodeType === 1 && (n.matches('a.citation') || n.querySelector('a.citation'));
        window.answerLog.push({kind: citation ? 'citation' : 'text'});
      }
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true,
                             attributes: true, attributeFilter: ['aria-busy'], attributeOldValue: true});
}"""


def ask(page: Page, question: str) -> str:
    """Ask through the form; the /ask response body (the event stream) once the answer is rendered."""
    page.evaluate(WATCH_ANSWER)
    page.get_by_label("Question").fill(question)
    with page.expect_response(lambda r: r.url.endswith("/ask") and r.request.method == "POST") as streamed:
        page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.locator("#answer a.citation").first).to_be_visible()
    return streamed.value.text()


def test_answer_streams_then_citations_reveal_and_open_the_passage(
    open_page: Opener, library: Library, sim: ServerThread
) -> None:
    reconfigure(sim.app, api_key=SIM_KEY, chat_script=[SCRIPT])
    page, _ = open_page(f"{library.url}/?view=ask")
    body = ask(page, QUESTION)
    assert len(re.findall(r'"type":\s*"delta"', body)) > 1, "the answer came in pieces"
    log: list[dict[str, Any]] = page.evaluate("window.answerLog")
    kinds = [entry["kind"] for entry in log]
    first_citation = kinds.index("citation")
    assert "text" in kinds[:first_citation], f"no streamed text before the final render: {log}"
    busy = [i for i, entry in enumerate(log) if entry["kind"] == "busy"]
    assert busy and busy[0] < kinds.index("text"), f"aria-busy was not set before the text streamed: {log}"
    answer = page.locator("#answer")
    expect(answer).not_to_have_attribute("aria-busy", "true")
    expect(answer).to_contain_text("Gutenberg")

    citation = page.locator("#answer a.citation").first
    expect(citation).to_have_attribute("href", re.compile(r"#source-\d+$"))
    source = page.locator(str(citation.get_attribute("href")))
    citation.click()
    expect(source).to_have_class(HIGHLIGHTED)
    expect(source).to_be_in_viewport()
    expect(source).to_be_focused()
    expect(page.get_by_role("list", name="Sources").locator("li.highlighted")).to_have_count(1)
    expect(source).to_contain_text(library.documents["printing-press.html"]["title"])

    source.get_by_role("link", name="Open document").click()
    expect(page).to_have_url(re.compile(r"[?&]view=document\b.*[?&]chunk=\d+|[?&]chunk=\d+.*[?&]view=document\b"))
    expect(page.locator("#document h2")).to_have_text(library.documents["printing-press.html"]["title"])
    passage = page.locator("section.passage.highlighted")
    expect(passage).to_have_count(1)
    expect(passage).to_be_in_viewport()
    expect(passage.locator("mark").first).to_be_visible()


def test_pdf_document_view_shows_the_file_at_the_passage_page(open_page: Opener, library: Library) -> None:
    document = library.documents["water-cycle.pdf"]
    with httpx.Client(base_url=library.url, timeout=60) as client:
        passages = client.get(f"/documents/{document['id']}/passages").json()["data"]
    chosen = max(passages, key=lambda p: (p["page"] or 0, -p["chunk_id"]))
    assert chosen["page"] and chosen["page"] > 1, "the sample PDF has passages past page 1"
    page, _ = open_page(f"{library.url}/?view=document&id={document['id']}&chunk={chosen['chunk_id']}")
    frame = page.locator("iframe#pdf")
    expect(frame).to_have_attribute("src", re.compile(rf"^blob:.*#page={chosen['page']}$"))
    expect(frame).to_have_attribute("title", f"PDF: {document['title']}")
    expect(page.get_by_role("link", name="Download original")).to_be_visible()
    passage = page.locator(f"section.passage#chunk-{chosen['chunk_id']}")
    expect(passage).to_have_class(HIGHLIGHTED)
    expect(passage).to_be_in_viewport()
    expect(page.locator("section.passage")).to_have_count(len(passages))


def test_abstained_answer_is_said_in_words(open_page: Opener, library: Library) -> None:
    question = "zxqv blorf wibble?"
    with httpx.Client(base_url=library.url, timeout=60) as client:
        expected = client.post("/ask", json={"question": question}).json()
    assert expected["abstained"], "nothing in the sample answers nonsense"
    page, _ = open_page(f"{library.url}/?view=ask")
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator("#answer")
    expect(answer).to_contain_text(expected["answer"])
    expect(answer).not_to_have_attribute("aria-busy", "true")
    expect(answer.locator("a.citation")).to_have_count(0)


def test_stop_aborts_a_running_answer(open_page: Opener, library: Library, sim: ServerThread) -> None:
    reconfigure(sim.app, api_key=SIM_KEY, chat_script=[SCRIPT], latency=5.0)  # the chat model takes its time
    page, _ = open_page(f"{library.url}/?view=ask")
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("aria-busy", "true")
    stop = page.get_by_role("button", name="Stop")
    with page.expect_event("requestfailed", lambda request: request.url.endswith("/ask")) as failed:
        stop.click()
    assert "ERR_ABORTED" in (failed.value.failure or "")
    expect(answer).not_to_have_attribute("aria-busy", "true")
    expect(stop).to_be_hidden()
    expect(page.locator("#status")).to_contain_text(re.compile("stopped", re.I))
    expect(answer.locator("a.citation")).to_have_count(0)
