// The API-key form: shown when a call answers 401; the key goes to sessionStorage and the call is retried.

import { forgetKey, getKey, setKey } from "./api.js";
import { $ } from "./dom.js";

let retries = []; // every call that met the 401, run again once a key is entered

/** Shows the form; `again` runs once a key has been entered. */
export function askForKey(again) {
  retries.push(again);
  const form = $("#key-form");
  $("#key-hint").textContent = getKey()
    ? "The server refused this API key. Check it and enter it again, or ask for another key."
    : "The server asks for an API key. It stays in this browser tab only (session storage), never in the address.";
  if (!form.hidden) return; // already asking: a later 401 of the same wave must not wipe what is being typed
  form.hidden = false;
  $("#key-input").value = "";
  $("#key-input").focus();
}

function showForget() {
  $("#forget-key").hidden = !getKey();
}

export function mountKeyForm() {
  showForget();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    setKey(key);
    $("#key-input").value = ""; // the key lives in sessionStorage only, not in the page
    $("#key-form").hidden = true;
    document.querySelector(".view:not([hidden]) h1")?.focus(); // not lost with the hidden form
    showForget();
    const waiting = retries;
    retries = [];
    for (const again of waiting) again();
  });
  $("#forget-key").addEventListener("click", () => {
    forgetKey();
    showForget();
    location.reload(); // what was shown with the key is not left on screen
  });
}
