// The search view: the form (query, mode, filters from the index's facets), the results, keyboard moves.

import { indexPath, postJson } from "./api.js";
import { $, baseName, h, markedText, plural } from "./dom.js";
import { commonFolder, facets, samplePaths, showEmptyState } from "./indexinfo.js";
import { clearError, guard, showStatus, stillShown } from "./messages.js";
import { hrefFor, navigate } from "./url.js";
import { filtersFor, renderFacetFilters } from "./filters.js";

const RESULTS = 10;
let facetValues = null; // the last facets shown, to give attribute filters their JSON types back

export function mountSearch() {
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  // A changed select re-runs the search at once when there is a query. The path box waits for Enter or Search:
  // its change event comes with the Enter's submit (two searches) or on merely leaving the box.
  $("#search-filters").addEventListener("change", (event) => {
    if (event.target.matches("select") && $("#search-input").value.trim()) submit();
  });
  document.addEventListener("keydown", onKey);
}

function formState() {
  const attrs = Object.create(null);
  for (const select of document.querySelectorAll("#attribute-filters select")) attrs[select.name] = select.value;
  return {
    view: "search",
    q: $("#search-input").value.trim(),
    mode: $("#search-mode").value,
    type: $("#search-type").value,
    path: $("#search-path").value.trim(),
    attrs,
  };
}

function submit() {
  const state = formState();
  if (!state.q) {
    showStatus("Type a few words to search for.");
    $("#search-input").focus();
    return;
  }
  navigate(state);
}

/** Renders the view for a URL state: fills the form, shows the filters and runs the search it names. */
/** Puts the URL's search in the form, at once: words typed while the page loads are not wiped later. */
export function fillSearch(state) {
  $("#search-input").value = state.q;
  $("#search-mode").value = state.mode;
  $("#search-path").value = state.path;
}

export async function showSearch(state) {
  const current = stillShown(); // a newer search or view must not be drawn over by this one's late answers
  $("#results").replaceChildren();
  await guard(async () => {
    const found = await facets();
    if (!current()) return;
    facetValues = found;
    renderFacetFilters(facetValues, state);
  });
  // Paths are absolute: the placeholder shows this index's folder (a failure leaves the generic one; no message).
  samplePaths().then((paths) => current() && ($("#search-path").placeholder = commonFolder(paths)), () => {});
  const empty = await guard(() => showEmptyState($("#view-search .empty-slot"), current));
  if (!current()) return;
  if (!state.q) {
    // No autofocus: "/" is the way in, and a "/" typed into a focused box would become part of the query.
    if (!empty) showStatus("Search by meaning and by words. Press / to jump to the search box.");
    return;
  }
  await guard(() => runSearch(state, current));
}

async function runSearch(state, current) {
  clearError();
  showStatus("Searching…");
  const started = performance.now();
  const body = { query: state.q, k: RESULTS, mode: state.mode, filters: filtersFor(state, facetValues) };
  const answer = await postJson(indexPath("/search"), body);
  if (!current()) return;
  const ms = Math.round(performance.now() - started);
  $("#results").replaceChildren(...answer.results.map(resultItem));
  showStatus(
    answer.results.length
      ? `${plural(answer.results.length, "result")} for “${state.q}” (${state.mode}, ${ms} ms)`
      : `No results for “${state.q}”. Try another mode (lexical needs the exact words, dense matches meaning) or fewer filters.` +
          (state.path ? await pathHint() : ""),
  );
}

/** A path prefix that matched nothing is often a relative one: the paths are absolute, as this one. */
async function pathHint() {
  const [example] = await samplePaths().catch(() => []);
  return example ? ` Path prefixes are absolute paths, such as ${example}.` : " Path prefixes are absolute paths.";
}

function resultItem(hit) {
  const href = hrefFor({ view: "document", id: hit.document_id, chunk: hit.chunk_id });
  const percent = Math.round(Math.max(0, Math.min(1, hit.score)) * 100);
  const fill = h("span.score-fill");
  fill.style.width = `${percent}%`; // CSSOM, which the page's CSP allows (style attributes it does not)
  return h(
    "li.result",
    {},
    h("h2.result-head", {}, h("a.result-title", { href }, hit.title || baseName(hit.path))),
    h(
      "p.result-meta",
      {},
      h("span.result-path", {}, hit.path),
      hit.page != null ? h("span.result-page", {}, `page ${hit.page}`) : null,
      hit.heading ? h("span.result-heading", {}, hit.heading) : null,
    ),
    h("p.result-snippet", {}, markedText(hit.snippet || hit.text)),
    h(
      "span.result-score",
      { title: `score ${hit.score.toFixed(4)} (0 to 1, higher is closer)` },
      h("span.score-bar", { "aria-hidden": "true" }, fill),
      `${percent}%`,
    ),
  );
}

const typing = (el) => el.matches("input, textarea, select, [contenteditable]");

/** "/" focuses the box; ArrowDown/ArrowUp (and j/k outside text fields) walk the result links. */
function onKey(event) {
  if ($("#view-search").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  const active = document.activeElement;
  if (event.key === "/" && !typing(active)) {
    event.preventDefault();
    $("#search-input").focus();
    $("#search-input").select();
    return;
  }
  const down = event.key === "ArrowDown" || (event.key === "j" && !typing(active));
  const up = event.key === "ArrowUp" || (event.key === "k" && !typing(active));
  if (!down && !up) return;
  const links = [...document.querySelectorAll("#results a.result-title")];
  const at = links.indexOf(active);
  const nothing = !active || active === document.body; // a freshly opened link: nothing has focus yet
  if (!links.length || (at < 0 && active !== $("#search-input") && !nothing)) return;
  event.preventDefault();
  if (at < 0) links[down ? 0 : links.length - 1].focus();
  else if (down) links[Math.min(at + 1, links.length - 1)].focus();
  else if (at === 0) $("#search-input").focus();
  else links[at - 1].focus();
}
