// Ingest jobs of server folders: start one, watch its progress bar and ETA (polled each second), cancel it.

import { getJson, indexPath, postJson, remove } from "./api.js";
import { $, formatSeconds, h, plural } from "./dom.js";
import { clearError, guard, showStatus, stillShown } from "./messages.js";
import { readState } from "./url.js";

const POLL_MS = 1000;
const SHOWN = 5; // the newest jobs; older ones are still polled for their end
let timer = null; // the one pending poll
let latest = 0; // one more at each listing: only the newest draws and schedules the next poll
let onFinished = () => {};
const running = new Set(); // ids of jobs seen queued or in progress
const DISMISSED = "semsearch.dismissedJobs";
const dismissed = new Set(load()); // ids of finished jobs the user put away (kept for this tab, across reloads)

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(DISMISSED) || "[]");
  } catch {
    return []; // site data blocked (or garbled): this page's memory only
  }
}

export function mountJobs(finished) {
  onFinished = finished;
  $("#ingest-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const path = $("#ingest-path").value.trim();
    if (path) guard(() => start(path));
  });
  $("#jobs").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-job]");
    if (button) guard(() => cancel(button.dataset.job));
    const dismiss = event.target.closest("button[data-dismiss]");
    if (dismiss) hide(dismiss);
  });
}

export function stopJobs() {
  clearTimeout(timer);
  timer = null;
  latest += 1; // a listing still in flight schedules nothing
}

async function start(path) {
  clearError();
  const job = await postJson(indexPath("/ingest"), { path });
  showStatus(`Ingesting ${job.path}…`);
  $("#ingest-path").value = "";
  await showJobs();
}

async function cancel(id) {
  await remove(`/jobs/${encodeURIComponent(id)}`);
  await showJobs();
}

/** A finished job's "Dismiss": it leaves this tab's list (the server keeps it); focus goes to the next button. */
function hide(button) {
  dismissed.add(button.dataset.dismiss);
  try {
    sessionStorage.setItem(DISMISSED, JSON.stringify([...dismissed].slice(-200)));
  } catch {
    // site data blocked: hidden until the page reloads
  }
  const item = button.closest("li.job");
  const next = item.nextElementSibling || item.previousElementSibling;
  item.remove();
  (next?.querySelector("button") || $("#ingest-path")).focus();
}

const active = (job) => job.status === "queued" || job.status === "in_progress";

/** Lists this index's jobs; polls again in a second while any runs, and calls onFinished(words) when some end. */
export async function showJobs() {
  stopJobs();
  const run = latest;
  const current = stillShown();
  const index = readState().index || "default";
  const listed = await getJson("/jobs");
  if (run !== latest || !current()) return; // a newer listing, or another view, took over
  const jobs = listed.data.filter((job) => job.index === index);
  drawJobs(jobs.filter((job) => !dismissed.has(job.id)).slice(0, SHOWN));
  const ended = jobs.filter((job) => running.has(job.id) && !active(job));
  for (const job of jobs) (active(job) ? running.add(job.id) : running.delete(job.id));
  if (ended.length) onFinished(ended.map((job) => `Ingest of ${job.path}: ${progressText(job)}.`).join(" "));
  if (jobs.some(active)) timer = setTimeout(() => guard(showJobs), POLL_MS);
}

/** Redraws the list; a Cancel button that had the focus hands it to its successor (or to the folder box when
 *  its job has ended), so a keyboard user is not thrown back to the top each second. */
function drawJobs(jobs) {
  const button = document.activeElement?.closest("#jobs button");
  const focused = button?.dataset.job || button?.dataset.dismiss;
  $("#jobs").replaceChildren(...jobs.map(jobItem));
  if (!focused) return;
  const again = [...document.querySelectorAll("#jobs button")].find((b) => (b.dataset.job || b.dataset.dismiss) === focused);
  (again || $("#ingest-path")).focus();
}

/** "Cancel" on screen; "Cancel ingest of PATH" to a screen reader, which may list several. */
function cancelButton(job) {
  const label = `Cancel ingest of ${job.path}`;
  return h("button.button-quiet", { type: "button", "data-job": job.id, "aria-label": label }, "Cancel");
}

function progressText(job) {
  const p = job.progress;
  if (job.status === "completed") return `completed · ${plural(p.files_total, "file")}`;
  if (job.status === "failed") return `failed: ${job.error || "see the server log"}`;
  if (job.status === "cancelled") return cancelledText(job.counts);
  if (job.status === "queued") return "queued";
  // The first files' pace says little of the rest: the ETA waits for 3 files and 5% of them.
  const settled = p.eta_seconds != null && p.files_done >= 3 && p.fraction >= 0.05;
  const eta = settled ? ` · ETA ${formatSeconds(p.eta_seconds)}` : "";
  return `${Math.round(p.fraction * 100)}% · ${p.files_done} of ${p.files_total} files${eta}`;
}

/** A cancelled job publishes nothing (no counts) unless it ended after writing. */
function cancelledText(counts) {
  if (!counts || !(counts.ingested || counts.removed)) return "cancelled: nothing from this job was published";
  return `cancelled after ${plural(counts.ingested, "file")} ingested`;
}

function dismissButton(job) {
  const label = `Dismiss ingest of ${job.path}`;
  return h("button.button-quiet", { type: "button", "data-dismiss": job.id, "aria-label": label }, "Dismiss");
}

function jobItem(job) {
  const percent = job.status === "completed" ? 100 : Math.round((job.progress?.fraction || 0) * 100);
  const bar = h("progress", { max: "100", value: String(percent), "aria-label": `Progress of ${job.path}` });
  const errors = (job.file_errors || []).map((e) => h("li", {}, `${e.path}: ${e.reason}`));
  return h(
    `li.job.job-${job.status}`,
    {},
    h("p.job-path", {}, job.path),
    bar,
    h("p.job-text", {}, progressText(job)),
    active(job) ? cancelButton(job) : dismissButton(job),
    errors.length ? h("ul.job-errors", { "aria-label": `Files that failed in ${job.path}` }, ...errors) : null,
  );
}
