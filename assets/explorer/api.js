// Calls to arrayd's own `/v1` API: the read token, and errors as the server words them.
//
// With `--read-token` every `/v1` call needs `Authorization: Bearer TOKEN`. On a 401 the
// page asks for the token once (one prompt however many calls failed at once), keeps it in
// sessionStorage (the tab's session: gone when the tab closes, never sent anywhere but this
// server) and repeats the call.

const TOKEN_KEY = "arrayd.readToken";

/** An answer that was not 2xx, with the server's `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

/** Set by the page: shows the token prompt with `reason`; resolves to the token typed, or
 *  null when the user gave up. */
let askToken = async () => null;
export function setTokenPrompt(prompt) { askToken = prompt; }

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function forgetToken() { sessionStorage.removeItem(TOKEN_KEY); }

let pendingPrompt = null;

/** The URL of `path` (under `/v1/datasets/`) with `params`, left out when empty. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  return url.pathname + url.search;
}

async function errorOf(response, url, init) {
  let body = null;
  try {
    // A HEAD answer has no body: ask again with GET, which fails the same way and says why.
    const r = init.method === "HEAD" ? await fetch(url, { ...init, method: "GET" }) : response;
    body = await r.json();
  } catch (_) { /* not JSON: fall back to the status line */ }
  const err = body && body.error;
  return new ApiError(
    response.status,
    err && err.code ? err.code : "http_error",
    err && err.message ? err.message : response.statusText || `HTTP ${response.status}`,
  );
}

/** Fetches `url` with the token; resolves to the Response when it is 2xx.
 *  @throws ApiError with the server's code and message otherwise (AbortError when `signal`
 *  aborts it). */
export async function call(url, { method = "GET", signal } = {}) {
  for (;;) {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = `Bearer ${t}`;
    const init = { method, headers, signal, cache: "no-store" };
    const response = await fetch(url, init);
    if (response.ok) return response;
    const error = await errorOf(response, url, init);
    if (response.status !== 401) throw error;
    // Another call may have asked already while this one was in flight.
    if (token() && token() !== t) continue;
    if (!pendingPrompt) {
      pendingPrompt = askToken(error).finally(() => { pendingPrompt = null; });
    }
    const typed = await pendingPrompt;
    if (typed === null) throw error;
    sessionStorage.setItem(TOKEN_KEY, typed);
  }
}

/** `call` and the answer's JSON. */
export async function json(url, options) {
  const response = await call(url, options);
  return response.json();
}

/** The first `limit` bytes of the answer's body as text, and whether that was all of it. The
 *  rest is not read: the connection is dropped, which stops the server's stream. */
export async function head(url, limit, options) {
  const response = await call(url, options);
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  let done = false;
  while (size < limit) {
    const next = await reader.read();
    if (next.done) { done = true; break; }
    chunks.push(next.value);
    size += next.value.length;
  }
  if (!done) reader.cancel().catch(() => {});
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.length; }
  const text = new TextDecoder().decode(bytes.subarray(0, Math.min(size, limit)));
  return { text, complete: done && size <= limit };
}
