// The page's entry: wires the views once, then renders whichever view the URL names (on load, on
// navigation and on back/forward).

import { getJson, useIndex } from "./api.js";
import { $, h } from "./dom.js";
import { mountAsk, showAsk, stopAsk } from "./ask.js";
import { leaveDocument, mountDocument, showDocument } from "./docview.js";
import { mountDocuments, showDocuments } from "./documents.js";
import { stopJobs } from "./jobs.js";
import { mountKeyForm } from "./keyform.js";
import { clearError, guard, newView, placeMessages, showStatus } from "./messages.js";
import { mountSearch, showSearch } from "./search.js";
import { buildUrl, interceptLinks, navigate, readState, render, setRouteHandler } from "./url.js";

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

let first = true;

async function route(state) {
  newView();
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
  if (!first) moveFocus($(view.section));
  first = false;
  document.title = state.q ? `${state.q} · ${view.title} · semsearch` : `${view.title} · semsearch`;
  $("#index-select").value = state.index || "default";
  await view.show(state);
}

/** After a navigation, focus goes to the new view's heading (screen readers announce it), unless it is already
 *  inside that view (a submitted form), on the key form or on the index picker. */
function moveFocus(section) {
  const active = document.activeElement;
  if (section.contains(active) || $("#key-form").contains(active) || active === $("#index-select")) return;
  section.querySelector("h1").focus({ preventScroll: true });
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
    navigate({ ...readState(), index: only }, { replace: true });
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
  navigate({ ...state, view, id: "", chunk: "", index });
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
  render();
  guard(loadIndexes, { always: true });
}

main();
