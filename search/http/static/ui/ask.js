// The ask view: the answer streams in over SSE, then its [n] markers become links to the sources below.

import { ApiError, indexPath, send } from "./api.js";
import { $, baseName, h, plural } from "./dom.js";
import { showEmptyState } from "./indexinfo.js";
import { clearError, guard, showError, showStatus, stillShown } from "./messages.js";
import { readEvents } from "./sse.js";
import { hrefFor, navigate } from "./url.js";

const PASSAGES = 6;
let running = null; // the AbortController of the stream in flight

export function mountAsk() {
  $("#ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("#ask-input").value.trim();
    if (q) navigate({ view: "ask", q, mode: $("#ask-mode").value });
  });
  // Enter asks, Shift+Enter makes a new line, as in chat boxes.
  $("#ask-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#ask-form").requestSubmit();
    }
  });
  $("#ask-stop").addEventListener("click", () => running?.abort());
  $("#answer").addEventListener("click", onCitation);
}

export function stopAsk() {
  running?.abort();
}

/** Puts the URL's question in the form, at once: a question typed while the page loads is not wiped later. */
export function fillAsk(state) {
  $("#ask-input").value = state.q;
  $("#ask-mode").value = state.mode;
}

export async function showAsk(state) {
  const current = stillShown(); // left (or asked again) while the stats load: this question is not asked
  resetAnswer();
  const empty = await guard(() => showEmptyState($("#view-ask .empty-slot"), current));
  if (!current()) return;
  if (empty) return; // nothing to answer from: the empty state alone says what to do
  if (!state.q) {
    showStatus("Ask a question: the answer cites the passages it comes from.");
    $("#ask-input").focus();
    return;
  }
  await guard(() => ask(state, current));
}

function resetAnswer() {
  $("#answer").replaceChildren();
  $("#answer-meta").textContent = "";
  $("#answer-box").hidden = true;
  $("#sources").replaceChildren();
  $("#sources-heading").hidden = true;
}

async function ask(state, current) {
  if (!current()) return; // a retry (after a key was entered) of a question no longer on screen
  clearError();
  resetAnswer();
  const controller = new AbortController();
  running = controller;
  setBusy(true);
  showStatus("Finding passages and writing the answer…");
  let ended = false; // an answer or an error event arrived
  try {
    const body = { question: state.q, k: PASSAGES, mode: state.mode, stream: true };
    const response = await send(indexPath("/ask"), { method: "POST", json: body, signal: controller.signal });
    $("#answer-box").hidden = false;
    await readEvents(response, (event) => {
      ended = onEvent(event) || ended;
    });
    if (!ended) throw new ApiError(0, "The answer stopped before it was complete: the connection closed early. Ask again.");
  } catch (err) {
    if (err?.name !== "AbortError") throw brokenOff(err);
    // Stopped by the Stop button; a stream stopped by leaving the view or by a newer question says nothing.
    if (current()) showStatus("Stopped. The answer so far stays above.");
  } finally {
    if (running === controller) {
      running = null;
      setBusy(false);
    }
  }
}

function setBusy(busy) {
  $("#answer").setAttribute("aria-busy", String(busy));
  if (!busy && document.activeElement === $("#ask-stop")) $("#ask-input").focus(); // not lost with the hidden button
  $("#ask-stop").hidden = !busy;
}

/** A stream that broke (the network, a garbled event) as words; the server's own errors as they are. */
function brokenOff(err) {
  if (err instanceof ApiError) return err;
  return new ApiError(0, `The answer stopped before it was complete (${err?.message || err}). Ask again.`);
}

/** Draws one event; true when it ends the answer (the answer itself, or an error). */
function onEvent(event) {
  if (event.type === "delta") {
    $("#answer").append(event.text);
    return false;
  }
  if (event.type === "answer") showAnswer(event);
  else if (event.type === "error") {
    showError(`The answer stopped: ${event.error?.message || "the server reported an error"}`);
    showStatus("");
  }
  return event.type === "answer" || event.type === "error";
}

function showAnswer(answer) {
  const numbers = new Set(answer.citations.map((c) => c.number));
  $("#answer").replaceChildren(...linkCitations(answer.answer, numbers));
  $("#answer-meta").textContent = answer.model ? `· ${answer.mode}, ${answer.model}` : `· ${answer.mode}`;
  $("#sources").replaceChildren(...answer.citations.map(sourceItem));
  $("#sources-heading").hidden = answer.citations.length === 0;
  showStatus(
    answer.abstained
      ? "No answer: the passages found do not say. Try other words, another mode, or ask in the Search view."
      : `Answered from ${plural(answer.citations.length, "source")}.`,
  );
}

/** Text with each known [n] as a link to #source-n; other brackets stay text. */
function linkCitations(text, numbers) {
  const nodes = [];
  for (const [i, part] of text.split(/\[(\d+)\]/).entries()) {
    if (i % 2 === 0) nodes.push(part);
    else if (numbers.has(Number(part))) nodes.push(h("a.citation", { href: `#source-${part}` }, `[${part}]`));
    else nodes.push(`[${part}]`);
  }
  return nodes;
}

function sourceItem(citation) {
  const href = hrefFor({ view: "document", id: citation.document_id, chunk: citation.chunk_id });
  const title = citation.title || baseName(citation.path);
  return h(
    "li.source",
    { id: `source-${citation.number}`, tabindex: "-1" },
    h("p.source-title", {}, h("span.source-number", {}, `[${citation.number}] `), title),
    h(
      "p.result-meta",
      {},
      h("span.result-path", {}, citation.path),
      citation.page != null ? h("span.result-page", {}, `page ${citation.page}`) : null,
    ),
    citation.quote ? h("blockquote.source-quote", {}, citation.quote) : null,
    h("a.open-document", { href, "aria-label": `Open document ${title}` }, "Open document"), // one of several
  );
}

/** A citation scrolls to its source and highlights it (the page's URL and history stay as they are). */
function onCitation(event) {
  const link = event.target.closest("a.citation");
  if (!link) return;
  event.preventDefault();
  const source = document.getElementById(link.getAttribute("href").slice(1));
  if (!source) return;
  for (const old of document.querySelectorAll(".source.highlighted")) old.classList.remove("highlighted");
  source.classList.add("highlighted");
  source.scrollIntoView({ behavior: matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth", block: "center" });
  source.focus({ preventScroll: true });
}
