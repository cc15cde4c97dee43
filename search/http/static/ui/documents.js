// The documents view: the table (a page at a time, delete per row) and uploads by drop or file picker.

import { ApiError, getJson, indexPath, postForm, remove } from "./api.js";
import { $, baseName, formatDate, h, plural } from "./dom.js";
import { forget } from "./indexinfo.js";
import { clearError, guard, showError, showStatus, stillShown } from "./messages.js";
import { hrefFor } from "./url.js";
import { mountJobs, showJobs } from "./jobs.js";

const PAGE = 50;
const changed = () => document.dispatchEvent(new Event("semsearch:documents")); // the index picker's counts
let lastId = 0;
let tableRun = 0; // one more at each fresh load: an older page (or a "Load more" meanwhile) lands nowhere

export function mountDocuments() {
  $("#upload-input").addEventListener("change", () => {
    const files = [...$("#upload-input").files];
    $("#upload-input").value = ""; // the same file can be chosen again
    if (files.length) guard(() => upload(files));
  });
  mountDropzone();
  $("#load-more").addEventListener("click", async () => {
    $("#load-more").disabled = true; // a second click before the page lands would load it twice
    await guard(() => loadPage(false));
    $("#load-more").disabled = false;
  });
  // A job that ended: the table shows its documents, and the status line says how it ended.
  mountJobs((message) =>
    guard(async () => {
      changed();
      await reloadDocuments();
      showStatus(message);
    }),
  );
}

/** Files dropped on #dropzone are uploaded at once. */
function mountDropzone() {
  const zone = $("#dropzone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault(); // this is what allows a drop
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging"); // not when moving onto a child
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = [...(event.dataTransfer?.files || [])];
    if (files.length) guard(() => upload(files));
  });
  // A file dropped beside the zone would make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (!zone.contains(event.target) && event.dataTransfer?.types.includes("Files")) event.preventDefault();
    });
  }
}

export async function showDocuments() {
  $("#upload-results").replaceChildren();
  await guard(() => reloadDocuments());
  await guard(() => showJobs());
}

/** The table from its first page (after an upload, a delete or a finished job). */
async function reloadDocuments() {
  forget();
  await loadPage(true);
}

async function loadPage(fresh) {
  if (fresh) lastId = 0;
  const run = fresh ? ++tableRun : tableRun;
  const current = stillShown();
  const query = new URLSearchParams({ limit: PAGE, after: lastId });
  const page = await getJson(indexPath(`/documents?${query}`));
  if (run !== tableRun || !current()) return;
  const rows = page.data.map(row);
  if (fresh) $("#documents-table tbody").replaceChildren(...rows);
  else $("#documents-table tbody").append(...rows);
  // "Load more" hides itself with the last page: focus goes on to the first new row, not back to <body>.
  const lost = [$("#load-more"), document.body, null].includes(document.activeElement);
  if (!fresh && rows.length && lost) rows[0].querySelector("a").focus();
  lastId = page.last_id ?? lastId;
  $("#load-more").hidden = !page.has_more;
  const count = $("#documents-table tbody").children.length;
  $("#documents-table").hidden = count === 0;
  showStatus(tableStatus(count, page.has_more));
}

function tableStatus(count, more) {
  if (count === 0) return "No documents yet: drop files above, choose them with Upload files, or ingest a server folder.";
  return more ? `${plural(count, "document")} shown; Load more for the rest.` : `${plural(count, "document")} in this index.`;
}

function cell(label, ...content) {
  return h("td", { "data-label": label }, ...content);
}

function row(doc) {
  const title = doc.title || baseName(doc.path);
  const remover = h("button.button-danger", { type: "button", "aria-label": `Delete ${title}` }, "Delete");
  remover.addEventListener("click", () => guard(() => deleteDocument(doc, title, remover.closest("tr"))));
  const status = doc.last_error ? `${doc.status}: ${doc.last_error}` : doc.status;
  return h(
    "tr",
    {},
    cell("Title", h("a", { href: hrefFor({ view: "document", id: doc.id }) }, title)),
    cell("Path", h("span.path", {}, doc.path)),
    cell("Type", doc.type),
    cell("Status", h(`span.badge.badge-${doc.status === "completed" ? "ok" : "other"}`, {}, status)),
    cell("Passages", String(doc.chunks)),
    cell("Ingested", formatDate(doc.ingested_at)),
    cell("Actions", remover),
  );
}

async function deleteDocument(doc, title, tr) {
  if (!window.confirm(`Delete “${title}” and its passages from the index? The file on disk is not touched.`)) return;
  await remove(indexPath(`/documents/${encodeURIComponent(doc.id)}`));
  // Focus goes to the next row's Delete button (or the previous row's, or the heading), not lost with the row.
  const next = tr.nextElementSibling || tr.previousElementSibling;
  tr.remove();
  (next?.querySelector("button") || $("#documents-heading")).focus();
  forget();
  if (!next) await loadPage(true); // the last row: the empty table's message
  showStatus(`Deleted “${title}”.`);
}

/** POST /documents with every file at once; one line per file says what became of it. */
async function upload(files) {
  clearError();
  const list = $("#upload-results");
  list.replaceChildren(...files.map((f) => h("li.pending", {}, `${f.name} — uploading…`)));
  showStatus(`Uploading ${plural(files.length, "file")}…`);
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  let results;
  try {
    results = (await postForm(indexPath("/documents"), form)).data;
  } catch (err) {
    list.replaceChildren();
    if (!(err instanceof ApiError && err.status === 422 && err.body?.error)) throw err;
    results = failedUploads(err, files);
    showError(err.message);
  }
  list.replaceChildren(...results.map(uploadItem));
  if (results.some((r) => r.status !== "failed")) changed();
  await reloadDocuments();
  showStatus(uploadSummary(results)); // the list is not a live region: this line is what a screen reader hears
}

function uploadSummary(results) {
  const failed = results.filter((r) => r.status === "failed").length;
  const known = results.filter((r) => r.status !== "failed" && r.duplicate).length;
  const added = results.length - failed - known;
  const parts = [added ? `${added} added` : "", known ? `${known} already indexed` : "", failed ? `${failed} failed` : ""];
  return `Uploaded ${plural(results.length, "file")}: ${parts.filter(Boolean).join(", ")}.`;
}

/** The per-file reasons of a 422 (no file stored): its details name each file in order. */
function failedUploads(err, files) {
  const details = err.body.error.details || [];
  return files.map((file, n) => {
    const reason = details[n]?.msg?.replace(`${file.name}: `, "") || err.message;
    return { filename: file.name, status: "failed", error: reason };
  });
}

function uploadItem(result) {
  if (result.status === "failed") return h("li.failed", {}, `${result.filename} — failed: ${result.error}`);
  return h("li.ok", {}, `${result.filename} — ${result.duplicate ? "already indexed" : "added"}`);
}
