// The page's state lives in the URL's query, so every view can be shared, bookmarked and reloaded.
// Never the API key: that stays in sessionStorage.

const MODES = ["hybrid", "dense", "lexical"];
const VIEWS = ["search", "ask", "documents", "document"];
let onRoute = () => {};
let rendered = ""; // the path and query last rendered

/** {view, q, mode, index, type, path, attrs: {key: value}, id, chunk} from a URL (the current one by default). */
export function readState(href = location.href) {
  const params = new URL(href).searchParams;
  const attrs = Object.create(null); // an attribute named "constructor" is not Object's
  for (const [key, value] of params) if (key.startsWith("attr.")) attrs[key.slice(5)] = value;
  const view = params.get("view");
  const mode = params.get("mode");
  return {
    view: VIEWS.includes(view) ? view : "search",
    q: params.get("q") || "",
    mode: MODES.includes(mode) ? mode : "hybrid",
    index: params.get("index") || "",
    type: params.get("type") || "",
    path: params.get("path") || "",
    attrs,
    id: params.get("id") || "",
    chunk: params.get("chunk") || "",
  };
}

/** The URL for a state; empty and default values are left out to keep links short. */
export function buildUrl(state) {
  const params = new URLSearchParams();
  if (state.view && state.view !== "search") params.set("view", state.view);
  if (state.id) params.set("id", state.id);
  if (state.chunk) params.set("chunk", state.chunk);
  if (state.q) params.set("q", state.q);
  if (state.mode && state.mode !== "hybrid") params.set("mode", state.mode);
  if (state.type) params.set("type", state.type);
  if (state.path) params.set("path", state.path);
  for (const [key, value] of Object.entries(state.attrs || {})) if (value !== "") params.set(`attr.${key}`, value);
  if (state.index) params.set("index", state.index);
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

/** A link to a view of the current index: hrefFor({view: "document", id: 5}). */
export const hrefFor = (state) => buildUrl({ index: readState().index, ...state });

export function setRouteHandler(handler) {
  onRoute = handler;
}

/** Renders the view the address names now; the address is remembered so a change of #fragment alone re-runs nothing. */
export function render() {
  rendered = location.pathname + location.search;
  return onRoute(readState());
}

/** Goes to a state: a new history entry (or a replaced one), then the view renders it. */
export function navigate(state, { replace = false } = {}) {
  const url = buildUrl({ index: readState().index, ...state });
  const same = url === location.pathname + location.search; // a repeated submit adds no history entry
  if (replace || same) history.replaceState({ inApp: true }, "", url);
  else history.pushState({ inApp: true }, "", url);
  return render();
}

/** Same-origin links to the page are followed without a reload (ordinary clicks only). */
export function interceptLinks() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin || url.pathname !== "/" || url.hash) return;
    event.preventDefault();
    history.replaceState({ ...history.state, from: link.getAttribute("href") }, ""); // Back focuses this link again
    history.pushState({ inApp: true }, "", url.pathname + url.search);
    render();
  });
  // Back/forward; the skip link's #main (and any other fragment) also fires popstate, but names the same view.
  window.addEventListener("popstate", async () => {
    if (location.pathname + location.search === rendered) return;
    const from = history.state?.from;
    await render();
    if (!from || location.pathname + location.search !== rendered) return;
    document.querySelector(`.view:not([hidden]) a[href="${CSS.escape(from)}"]`)?.focus();
  });
}
