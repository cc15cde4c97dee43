// What the page knows about the current index: its stats (for the empty state) and its facets (for the filters).

import { ApiError, getJson, indexPath } from "./api.js";
import { h } from "./dom.js";
import { hrefFor } from "./url.js";

const cache = new Map();

/** GET once per index until `forget()` (after uploads, deletes and jobs the numbers change). */
function cached(kind, path) {
  const key = `${kind}:${indexPath("")}`;
  if (!cache.has(key)) {
    const pending = getJson(indexPath(path));
    pending.catch(() => cache.delete(key)); // a failure (a 401 say) is asked again next time
    cache.set(key, pending);
  }
  return cache.get(key);
}

export const forget = () => cache.clear();

export const stats = () => cached("stats", "/stats");

/** The index's facets, or null when the server has no /facets route (an older server): no filter selects then. */
export async function facets() {
  try {
    return await cached("facets", "/facets");
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}

/** The empty state that teaches: the command to run, and the upload link. */
export function emptyState(info) {
  const folder = info.index || "./my-index";
  return h(
    "div.card.empty-state",
    {},
    h("h2", {}, "This index has no documents yet"),
    h("p", {}, "Add a folder of documents from a terminal on the server:"),
    h("pre", {}, h("code", {}, `semsearch ingest ./docs --index ${folder}`)),
    h("p", {}, "or ", h("a", { href: hrefFor({ view: "documents" }) }, "upload files in the Documents view"), "."),
  );
}

/** Shows the empty state in `slot` when the index is empty; true when it did. */
export async function showEmptyState(slot) {
  slot.replaceChildren();
  const info = await stats();
  if (info.documents > 0) return false;
  slot.append(emptyState(info));
  return true;
}
