// The page's two message regions (an alert for errors, a status line) and `guard`, which runs an action
// and turns what can go wrong into words: a 401 asks for a key and retries, anything else is shown.

import { ApiError } from "./api.js";
import { askForKey } from "./keyform.js";
import { $ } from "./dom.js";

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

/** Runs `action()`; an ApiError becomes words on the page (a 401 opens the key form, which retries). */
export async function guard(action) {
  try {
    const result = await action();
    return result;
  } catch (err) {
    if (err?.name === "AbortError") return undefined;
    if (err instanceof ApiError && err.status === 401) {
      showStatus("Waiting for an API key…");
      askForKey(() => guard(action));
      return undefined;
    }
    if (err instanceof ApiError) showError(err.message);
    else {
      console.error(err);
      showError(`Something went wrong in the page: ${err?.message || err}`);
    }
    return undefined;
  }
}
