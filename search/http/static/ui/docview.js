// The document view: every passage in order, the cited one highlighted; a PDF also shown at its page.

import { ApiError, getJson, indexPath, send } from "./api.js";
import { $, baseName, formatDate, h } from "./dom.js";
import { guard, showStatus } from "./messages.js";
import { hrefFor } from "./url.js";

let blobUrls = []; // object URLs of this view, revoked when it is left
let latest = 0; // the newest showDocument: an older load still in flight draws nothing

/** "Back" returns to where the reader came from (results, an answer); from a shared link, to the search view. */
export function mountDocument() {
  $("#back-link").addEventListener("click", (event) => {
    if (!history.state?.inApp) return;
    event.preventDefault();
    event.stopPropagation();
    history.back();
  });
}

export function leaveDocument() {
  for (const url of blobUrls) URL.revokeObjectURL(url);
  blobUrls = [];
  $("#pdf-slot").replaceChildren();
}

export async function showDocument(state) {
  leaveDocument();
  $("#document-heading").textContent = "Loading…";
  $("#document-meta").replaceChildren();
  $("#document-actions").replaceChildren();
  $("#passages").replaceChildren();
  $("#back-link").href = hrefFor({});
  if (!/^\d+$/.test(state.id)) {
    $("#document-heading").textContent = "No document";
    showStatus("This link names no document: open one from the search results or the Documents view.");
    return;
  }
  const run = ++latest;
  await guard(() => load(state, () => run === latest));
}

async function load(state, current) {
  const { document: doc, data: passages } = await passagesOf(state.id);
  if (!current()) return;
  $("#document-heading").textContent = doc.title || baseName(doc.path);
  document.title = `${$("#document-heading").textContent} · semsearch`;
  $("#document-meta").replaceChildren(...meta(doc));
  $("#document-actions").append(downloadLink(doc));
  $("#passages").replaceChildren(...passages.map((p) => passageSection(p, String(p.chunk_id) === state.chunk)));
  const cited = passages.find((p) => String(p.chunk_id) === state.chunk);
  showStatus(`${passages.length} passage${passages.length === 1 ? "" : "s"}${cited ? "; the cited one is highlighted" : ""}.`);
  // The PDF's frame takes its place before the scroll, so loading it later does not push the passage away.
  const frame = doc.type === "pdf" ? pdfFrame(doc) : null;
  if (cited) focusPassage(cited.chunk_id);
  if (!frame) return;
  try {
    const url = await fileBlobUrl(doc);
    if (current()) frame.src = `${url}#page=${cited?.page ?? 1}`;
  } catch (err) {
    frame.remove(); // the file is gone or changed: the error says which, the passages stay
    throw err;
  }
}

/** GET /documents/{id}/passages; a server without that route still shows the document's details. */
async function passagesOf(id) {
  try {
    return await getJson(indexPath(`/documents/${id}/passages`));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404 && /^no route/.test(err.message))) throw err;
    return { document: await getJson(indexPath(`/documents/${id}`)), data: [] };
  }
}

function meta(doc) {
  const rows = [
    ["Path", doc.path],
    ["Type", doc.type],
    ["Pages", doc.pages ?? "—"],
    ["Passages", doc.chunks],
    ["Ingested", formatDate(doc.ingested_at)],
  ];
  return rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, String(value))]);
}

function passageSection(passage, cited) {
  const label = [passage.page != null ? `Page ${passage.page}` : "", passage.heading || ""].filter(Boolean).join(" · ");
  const text = h("div.passage-text", {}, cited ? h("mark", {}, passage.text) : passage.text);
  return h(
    "section.passage",
    { id: `chunk-${passage.chunk_id}`, tabindex: cited ? "-1" : null },
    label ? h("p.passage-label", {}, label) : null,
    text,
  );
}

function focusPassage(chunkId) {
  const section = document.getElementById(`chunk-${chunkId}`);
  section.classList.add("highlighted");
  section.focus({ preventScroll: true });
  section.scrollIntoView({ block: "center" });
}

/** The original file as a blob: fetched with the key header, which a plain link could not send. */
async function fileBlobUrl(doc) {
  const response = await send(indexPath(`/documents/${doc.id}/file`));
  const url = URL.createObjectURL(await response.blob());
  blobUrls.push(url);
  return url;
}

function downloadLink(doc) {
  const link = h("a.button-quiet", { href: indexPath(`/documents/${doc.id}/file`), download: baseName(doc.path) }, "Download original");
  link.addEventListener("click", async (event) => {
    if (link.href.startsWith("blob:")) return; // already fetched: the browser downloads it
    event.preventDefault();
    const url = await guard(() => fileBlobUrl(doc));
    if (!url) return;
    link.href = url;
    link.click();
  });
  return link;
}

function pdfFrame(doc) {
  const frame = h("iframe", { id: "pdf", title: `PDF: ${doc.title || baseName(doc.path)}` });
  $("#pdf-slot").replaceChildren(frame);
  return frame;
}
