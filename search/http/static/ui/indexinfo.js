// What the page knows about the current index: its stats (for the empty state) and its facets (for the filters).

import { getJson, indexPath } from "./api.js";
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

const stats = () => cached("stats", "/stats");

export const facets = () => cached("facets", "/facets");

/** Paths of the first documents: an example of the absolute paths the Path prefix filter compares with. */
export const samplePaths = async () => (await cached("paths", "/documents?limit=20")).data.map((doc) => doc.path);

/** The folder the sample paths share ("/home/me/docs/"), a plausible Path prefix. */
export function commonFolder(paths) {
  if (!paths.length) return "/home/me/docs/";
  let prefix = paths[0];
  for (const path of paths) while (!path.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const folder = prefix.slice(0, prefix.lastIndexOf("/") + 1);
  return folder.length > 1 ? folder : "/home/me/docs/";
}

/** The empty state that teaches: the command to run, and the upload link. */
function emptyState(info) {
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

/** Shows the empty state in `slot` when the index is empty and the view is `current()`; true when it did. */
export async function showEmptyState(slot, current) {
  slot.replaceChildren();
  const info = await stats();
  if (info.documents > 0 || !current()) return false;
  slot.append(emptyState(info));
  return true;
}
