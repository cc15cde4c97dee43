// The page's entry: wires the views once, then renders whichever view the URL names (on load, on
// navigation and on back/forward).

import { getJson, useIndex } from "./api.js";
import { $, h } from "./dom.js";
import { mountAsk, showAsk, stopAsk } from "./ask.js";
import { leaveDocument, mountDocument, showDocument } from "./docview.js";
import { mountDocuments, showDocuments } from "./documents.js";
import { stopJobs } from "./jobs.js";
import { mountKeyForm } from "./keyform.js";
import { clearError, guard, placeMessages, showStatus } from "./messages.js";
import { mountSearch, showSearch } from "./search.js";
import { buildUrl, interceptLinks, readState, setRouteHandler } from "./url.js";

const VIEWS = {
  search: { section: "#view-search", nav: "search", title: "Search", show: showSearch },
  ask: { section: "#view-ask", nav: "ask", title: "Ask", show: showAsk },
  documents: { section: "#view-documents", nav: "documents", title: "Documents", show: showDocuments },
  document: { section: "#view-document", nav: "documents", title: "Document", show: showDocument },
};

/** Stops what the previous view left running (a stream, a poll, blob URLs). */
function leaveViews() {
  stopAsk();
  stopJobs();
  leaveDocument();
}

async function route(state) {
  leaveViews();
  clearError();
  showStatus("");
  useIndex(state.index);
  const view = VIEWS[state.view];
  for (const [name, other] of Object.entries(VIEWS)) $(other.section).hidden = name !== state.view;
  for (const link of document.querySelectorAll("nav[aria-label=Views] a")) {
    if (link.dataset.view === view.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  updateNavLinks(state.index);
  placeMessages($(view.section));
  document.title = state.q ? `${state.q} · ${view.title} · semsearch` : `${view.title} · semsearch`;
  $("#index-select").value = state.index || "default";
  await view.show(state);
}

/** The header's links keep the chosen index. */
function updateNavLinks(index) {
  for (const link of document.querySelectorAll("nav[aria-label=Views] a, a.brand")) {
    const view = link.dataset.view || "search";
    link.href = buildUrl({ view, index });
  }
}

/** The index picker, shown only when the key may use more than one index. */
async function loadIndexes() {
  const { data } = await getJson("/indexes");
  const only = data.length === 1 ? data[0].name : "";
  if (only && only !== "default" && !readState().index) {
    // A key scoped to one named index cannot use the default one: go straight to its index.
    history.replaceState({ inApp: true }, "", buildUrl({ ...readState(), index: only }));
    route(readState());
  }
  if (data.length < 2) return;
  const select = $("#index-select");
  select.replaceChildren(...data.map((entry) => h("option", { value: entry.name }, indexLabel(entry))));
  select.value = readState().index || "default";
  $("#index-picker").hidden = false;
}

function indexLabel(entry) {
  return entry.documents === undefined ? entry.name : `${entry.name} (${entry.documents} docs)`;
}

function onIndexChange() {
  const state = readState();
  const index = $("#index-select").value === "default" ? "" : $("#index-select").value;
  // A document id belongs to one index: another index starts from its search view.
  const view = state.view === "document" ? "search" : state.view;
  history.pushState({ inApp: true }, "", buildUrl({ ...state, view, id: "", chunk: "", index }));
  route(readState());
}

function main() {
  mountKeyForm();
  mountSearch();
  mountAsk();
  mountDocuments();
  mountDocument();
  $("#index-select").addEventListener("change", onIndexChange);
  setRouteHandler(route);
  interceptLinks();
  guard(loadIndexes);
  route(readState());
}

main();
