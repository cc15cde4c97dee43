// The document view: every passage in order, the cited one highlighted; a PDF also shown at its page.

import { getJson, indexPath, send } from "./api.js";
import { $, baseName, formatDate, h, plural } from "./dom.js";
import { guard, showStatus, stillShown } from "./messages.js";
import { hrefFor } from "./url.js";

let missing = false; // the last load was answered 404
let blobUrls = []; // object URLs of this view, revoked when it is left

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
  const current = stillShown(); // a load overtaken by another view draws nothing
  const loaded = await guard(() => load(state, current));
  if (loaded || !current() || !$("#key-form").hidden || $("#document-heading").textContent !== "Loading…") return;
  // Failed (the error above says why): the heading says so, and a link leads back to searching.
  const failure = missing ? "Document not found" : "Could not load this document";
  $("#document-heading").textContent = failure;
  document.title = `${failure} · semsearch`;
  $("#document-actions").replaceChildren(h("a", { href: hrefFor({}) }, "Back to search"));
}

async function load(state, current) {
  const path = indexPath(`/documents/${encodeURIComponent(state.id)}/passages`);
  missing = false;
  const { document: doc, data: passages } = await getJson(path).catch((err) => {
    missing = err?.status === 404;
    throw err;
  });
  if (!current()) return true;
  $("#document-heading").textContent = doc.title || baseName(doc.path);
  document.title = `${$("#document-heading").textContent} · semsearch`;
  $("#document-meta").replaceChildren(...meta(doc));
  $("#document-actions").append(downloadLink(doc));
  $("#passages").replaceChildren(...passages.map((p) => passageSection(p, String(p.chunk_id) === state.chunk)));
  const cited = passages.find((p) => String(p.chunk_id) === state.chunk);
  showStatus(`${plural(passages.length, "passage")}${cited ? "; the cited one is highlighted" : ""}.`);
  // The PDF's frame takes its place before the scroll, so loading it later does not push the passage away.
  const frame = doc.type === "pdf" ? pdfFrame(doc) : null;
  if (cited) focusPassage(cited.chunk_id);
  if (!frame) return true;
  try {
    const url = await fileBlobUrl(doc, "application/pdf", current);
    if (url) frame.src = `${url}#page=${cited?.page ?? 1}`;
    return true;
  } catch (err) {
    frame.remove(); // the file is gone or changed: the error says which, the passages stay
    throw err;
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

const filePath = (doc) => indexPath(`/documents/${encodeURIComponent(doc.id)}/file`);

/**
 * The original file as a blob URL (fetched with the key header, which a plain link could not send), or null
 * when the view changed meanwhile. The blob's type is ours, not the file's: a blob URL runs in the page's
 * origin, so an ingested HTML file must never become a text/html one (a download is octet-stream).
 */
async function fileBlobUrl(doc, type, current) {
  const bytes = await (await send(filePath(doc))).blob();
  if (!current()) return null;
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  blobUrls.push(url);
  return url;
}

function downloadLink(doc) {
  const link = h("a.button-quiet", { href: filePath(doc), download: baseName(doc.path) }, "Download original");
  const current = stillShown();
  link.addEventListener("click", async (event) => {
    if (link.href.startsWith("blob:")) return; // already fetched: the browser downloads it
    event.preventDefault();
    const url = await guard(() => fileBlobUrl(doc, "application/octet-stream", current));
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
