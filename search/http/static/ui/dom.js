// Small DOM helpers. Server strings only ever reach the page through textContent (or markedText, below).

/** h("a.result-title", {href}, "text", child) -> an element; attributes set with setAttribute, never innerHTML. */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "hidden") el.hidden = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** A fragment for text holding literal `<mark>`/`</mark>` tags: those become <mark> elements, the rest stays text. */
export function markedText(text) {
  const fragment = document.createDocumentFragment();
  const parts = String(text).split(/(<mark>|<\/mark>)/);
  let mark = null;
  for (const part of parts) {
    if (part === "<mark>") mark = h("mark");
    else if (part === "</mark>") {
      if (mark) fragment.append(mark);
      mark = null;
    } else if (part) (mark || fragment).append(part);
  }
  if (mark) fragment.append(mark); // an unclosed mark still shows its text
  return fragment;
}

/** The file name at the end of a path ("/a/b/report.pdf" -> "report.pdf"). */
export const baseName = (path) => String(path || "").split(/[\\/]/).pop() || String(path || "");

/** "1 file", "3 files". */
export const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

export function formatSeconds(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatDate(epochSeconds) {
  return epochSeconds ? new Date(epochSeconds * 1000).toLocaleString() : "—";
}
