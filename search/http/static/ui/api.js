// The HTTP API: one fetch wrapper that adds the key, turns errors into ApiError, and knows the index's base path.

const KEY_NAME = "semsearch.apiKey";
let indexName = "";

/** A failed call: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// With site data blocked, touching sessionStorage throws: the key then lives in this page's memory only.
let keyInMemory = "";
function storage(action) {
  try {
    return action(sessionStorage);
  } catch {
    return undefined;
  }
}
export const getKey = () => storage((s) => s.getItem(KEY_NAME)) ?? keyInMemory;
export function setKey(key) {
  keyInMemory = key;
  storage((s) => s.setItem(KEY_NAME, key));
}
export function forgetKey() {
  keyInMemory = "";
  storage((s) => s.removeItem(KEY_NAME));
}

/** Per-index routes live at the root for the default index, under /indexes/NAME for the others. */
export function useIndex(name) {
  indexName = name || "";
}

export function indexPath(path) {
  return indexName ? `/indexes/${encodeURIComponent(indexName)}${path}` : path;
}

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** The server's own words for a failed response (our error shape, FastAPI's `detail`, or the status). */
async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall back to the status line
  }
  const message = body?.error?.message || (typeof body?.detail === "string" ? body.detail : "");
  return new ApiError(response.status, message || `The server answered ${response.status} ${response.statusText}`.trim(), body);
}

/** fetch() with the key header; resolves to the Response, rejects with ApiError on network failure or non-2xx. */
export async function send(path, { method = "GET", json, form, signal } = {}) {
  const init = { method, signal, headers: headers(json === undefined ? {} : { "Content-Type": "application/json" }) };
  if (json !== undefined) init.body = JSON.stringify(json);
  if (form !== undefined) init.body = form;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Cannot reach the server. Is semsearch serve still running?");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** The JSON body of a successful call (a 2xx that is not JSON, say a proxy's page, is an ApiError too). */
async function jsonOf(response) {
  try {
    return await response.json();
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(response.status, `The server answered ${response.status} with something that is not JSON.`);
  }
}

export const getJson = async (path, options) => jsonOf(await send(path, options));
export const postJson = async (path, json, options = {}) => jsonOf(await send(path, { ...options, method: "POST", json }));
export const postForm = async (path, form) => jsonOf(await send(path, { method: "POST", form }));
export const remove = async (path) => jsonOf(await send(path, { method: "DELETE" }));
