// The page's entry: wires the views once, then renders whichever view the URL names (on load, on
// navigation and on back/forward).

import { getJson, useIndex } from "./api.js";
import { $, h } from "./dom.js";
import { fillAsk, mountAsk, showAsk, stopAsk } from "./ask.js";
import { leaveDocument, mountDocument, showDocument } from "./docview.js";
import { mountDocuments, showDocuments } from "./documents.js";
import { stopJobs } from "./jobs.js";
import { mountKeyForm } from "./keyform.js";
import { clearError, guard, newView, placeMessages, showError, showStatus, stillShown } from "./messages.js";
import { fillSearch, mountSearch, showSearch } from "./search.js";
import { buildUrl, interceptLinks, navigate, readState, render, setRouteHandler } from "./url.js";

const VIEWS = {
  search: { section: "#view-search", nav: "search", title: "Search", fill: fillSearch, show: showSearch },
  ask: { section: "#view-ask", nav: "ask", title: "Ask", fill: fillAsk, show: showAsk },
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
  const current = stillShown(); // a newer route (a question asked while this one loads) wins
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
  $("#index-select").value = shownName(state.index || "default");
  view.fill?.(state);
  if ((await unknownIndex(state)) || !current()) return;
  showAccess((await indexes().catch(() => null))?.data, state.index);
  if (current()) await view.show(state);
}

/** A key that may only read the index: the page hides uploads, ingest and deletes (`writable` in GET /indexes). */
function showAccess(listed, index) {
  const entry = listed?.find((item) => item.name === (index || "default"));
  document.body.classList.toggle("read-only", entry?.writable === false);
}

let listing = null; // GET /indexes, asked once (again after documents are added)
const indexes = () => (listing ??= getJson("/indexes").catch((err) => ((listing = null), Promise.reject(err))));
let aliases = new Map(); // an index listed under another name for the same folder -> the name the picker shows
const shownName = (name) => aliases.get(name) || name;

/** A URL naming an index this server does not list: say so in words and offer the ones it has. */
async function unknownIndex(state) {
  if (!state.index) return false;
  const data = (await indexes().catch(() => null))?.data;
  if (!data || data.some((entry) => entry.name === state.index)) return false;
  $("#index-select").value = "default";
  const view = state.view === "document" ? "search" : state.view;
  const href = (name) => buildUrl({ ...state, view, id: "", chunk: "", index: name === "default" ? "" : name });
  const links = oneEntryPerFolder(data).map((entry) => h("a", { href: href(entry.name) }, entry.name));
  showError(`There is no index named “${state.index}” on this server.`);
  if (links.length) $("#error").append(" Open ", ...links.flatMap((link, n) => (n ? [", ", link] : [link])), ".");
  return true;
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
  const { data: listed } = await indexes();
  showAccess(listed, readState().index); // also after a key was entered: the listing is the key's
  const data = oneEntryPerFolder(listed);
  const only = data.length === 1 ? data[0].name : "";
  if (only && only !== "default" && !readState().index) {
    // A key scoped to one named index cannot use the default one: go straight to its index.
    navigate({ ...readState(), index: only }, { replace: true });
  }
  if (data.length < 2) return;
  const select = $("#index-select");
  select.replaceChildren(...data.map((entry) => h("option", { value: entry.name }, indexLabel(entry))));
  select.value = shownName(readState().index || "default");
  $("#index-picker").hidden = false;
}

/** `--index root/main --index-root root` lists one folder twice (default and main): keep one, the default first. */
function oneEntryPerFolder(listed) {
  const kept = new Map();
  aliases = new Map();
  const ordered = [...listed].sort((a, b) => (b.name === "default") - (a.name === "default"));
  for (const entry of ordered) {
    const folder = entry.folder || entry.name;
    if (kept.has(folder)) aliases.set(entry.name, kept.get(folder).name);
    else kept.set(folder, entry);
  }
  return listed.filter((entry) => !aliases.has(entry.name));
}

/** Documents were added (an upload, a finished job): the picker's counts are asked again. */
function refreshIndexes() {
  listing = null;
  guard(loadIndexes, { always: true });
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
  document.addEventListener("semsearch:documents", refreshIndexes);
  setRouteHandler(route);
  interceptLinks();
  render();
  guard(loadIndexes, { always: true });
}

main();
