// The page's two message regions (an alert for errors, a status line), the view generation that tells a
// late answer from the current one, and `guard`, which runs an action and turns what can go wrong into words.

import { ApiError } from "./api.js";
import { askForKey } from "./keyform.js";
import { $ } from "./dom.js";

let generation = 0; // one more each time a view is shown (a navigation, back/forward, a submitted form)

/** A new view is being shown: whatever the previous one still has in flight must not draw or speak. */
export function newView() {
  generation += 1;
}

/** A test for later: is the view shown now the one that was shown when this was called? */
export function stillShown() {
  const at = generation;
  return () => at === generation;
}

export function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

export const clearError = () => showError("");

export function showStatus(message) {
  $("#status").textContent = message;
}

/** Moves the message regions into the view being shown, so they sit under its form. */
export function placeMessages(view) {
  view.querySelector(".message-slot").append($(".messages"));
}

/**
 * Runs `action()`; an ApiError becomes words on the page (a 401 opens the key form, which retries).
 * A failure that lands after the view changed is dropped, unless `always` (what the page needs in any view).
 */
export async function guard(action, { always = false } = {}) {
  const current = stillShown();
  const relevant = () => always || current();
  try {
    return await action();
  } catch (err) {
    if (err?.name === "AbortError" || !relevant()) return undefined;
    if (err instanceof ApiError && err.status === 401) {
      showStatus("Waiting for an API key…");
      askForKey(() => relevant() && guard(action, { always }));
    } else if (err instanceof ApiError) {
      showError(err.message);
    } else {
      console.error(err);
      showError(`Something went wrong in the page: ${err?.message || err}`);
    }
    if (err?.status !== 401) showStatus(""); // no "Searching…" left under the error
    return undefined;
  }
}
