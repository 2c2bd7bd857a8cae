// The REST client: the signed-in user's token, JSON calls, errors as google.rpc.Status, and
// the job event stream read with fetch (so the token stays in a header, never in a URL).

const TOKEN_KEY = "alethia.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// The token's claims, for display only: the gateway and the services verify it.
export function claims(tok = token()) {
  const part = (tok || "").split(".")[1];
  if (!part) return null;
  try {
    const text = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(decodeURIComponent(Array.from(text, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("")));
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(httpStatus, body) {
    super((body && body.message) || `HTTP ${httpStatus}`);
    this.httpStatus = httpStatus;
    this.code = body && body.code;
    this.details = (body && body.details) || [];
  }

  // [{field, description}] from google.rpc.BadRequest.
  get fieldViolations() {
    return this.details.filter((d) => (d["@type"] || "").endsWith("google.rpc.BadRequest")).flatMap((d) => d.field_violations || d.fieldViolations || []);
  }

  // [{type, subject, description}] from google.rpc.PreconditionFailure (a stale plan).
  get preconditionViolations() {
    return this.details.filter((d) => (d["@type"] || "").endsWith("google.rpc.PreconditionFailure")).flatMap((d) => d.violations || []);
  }
}

export async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { code: 14, message: `the gateway cannot be reached (${err.message})` });
  }
  const text = await resp.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { message: text.slice(0, 300) };
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, parsed);
    if (resp.status === 401) window.dispatchEvent(new CustomEvent("alethia:unauthenticated", { detail: err }));
    throw err;
  }
  return parsed;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body ?? {});
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);

// Every page of a list route: {items, key} where key is the response's list field.
export async function listAll(path, key, pageSize = 200) {
  const items = [];
  let pageToken = "";
  for (let i = 0; i < 50; i++) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}page_size=${pageSize}${pageToken ? `&page_token=${encodeURIComponent(pageToken)}` : ""}`);
    items.push(...(page[key] || []));
    pageToken = page.next_page_token || "";
    if (!pageToken) break;
  }
  return items;
}

// Follow GET /api/jobs/{id}/events: calls onEvent(event) per frame until the stream ends
// (after the job's terminal event) or signal aborts. Resumes after lastEventId on reconnect.
export async function followEvents(jobId, onEvent, { signal, lastEventId = "" } = {}) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const resp = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/events`, { headers, signal });
  if (!resp.ok) {
    let body = {};
    try {
      body = await resp.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(resp.status, body);
  }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let last = lastEventId;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let data = "";
      let kind = "message";
      for (const line of frame.split("\n")) {
        if (line.startsWith("data:")) data += line.slice(5).trimStart();
        else if (line.startsWith("id:")) last = line.slice(3).trim();
        else if (line.startsWith("event:")) kind = line.slice(6).trim();
      }
      if (!data) continue;
      const parsed = JSON.parse(data);
      if (kind === "error") throw new ApiError(500, parsed);
      onEvent(parsed);
    }
  }
  return last;
}
