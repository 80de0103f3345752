// The public REST surface of the gateway (same origin), with the API key of
// this browser tab. Every failure becomes an ApiError whose `kind` the page
// turns into a message: auth (401/403), rate (429), unavailable (503),
// network (the gateway cannot be reached), notfound, other.

const KEY = "connlog.apiKey";

export function storedKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function storeKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(kind, status, message, retryAfter) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function kindOf(status) {
  if (status === 401 || status === 403) return "auth";
  if (status === 429) return "rate";
  if (status === 503) return "unavailable";
  if (status === 404) return "notfound";
  return "other";
}

async function errorOf(response) {
  let message = "";
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    message = body.message || (body.errors && body.errors.join("; ")) || body.error || text;
  } catch {
    message = text;
  }
  const retry = response.headers.get("retry-after");
  return new ApiError(kindOf(response.status), response.status, String(message || response.statusText).slice(0, 500),
                      retry === null ? null : retry);
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) search.append(name, String(one));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function send(path, params, signal) {
  let response;
  try {
    response = await fetch(`/v1/${path}${query(params)}`, {
      headers: { Authorization: `Bearer ${storedKey()}`, Accept: "application/json" },
      signal, cache: "no-store", credentials: "omit",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError("network", 0, "The gateway cannot be reached.", null);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function get(path, params = {}, signal) {
  const response = await send(path, params, signal);
  return response.json();
}

// Every page of a listing, up to `limit` items (then `truncated`).
export async function getAll(path, field, params, limit, signal, onPage) {
  const items = [];
  let token = "";
  for (;;) {
    const body = await get(path, { ...params, pageToken: token }, signal);
    const page = body[field] || [];
    items.push(...page);
    if (onPage) onPage(items.length);
    token = body.nextPageToken || "";
    if (!token) return { items, truncated: false };
    if (items.length >= limit) return { items: items.slice(0, limit), truncated: true };
  }
}

// The live tail: calls onMessage for every NDJSON message of the watch,
// resuming with the last resume token after a disconnection, until `signal`
// aborts. onState("open" | "retrying" | "stopped", error?) reports its state.
export async function watch(path, params, signal, onMessage, onState) {
  let token = "";
  let delay = 500;
  while (!signal.aborted) {
    try {
      const response = await send(path, { ...params, resumeToken: token }, signal);
      onState("open");
      delay = 500;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          if (!line) continue;
          const message = JSON.parse(line);
          if (message.resumeToken !== undefined || message.connectionEvents) {
            if (message.resumeToken) token = message.resumeToken;
            onMessage(message);
          } else if (message.code !== undefined) {
            throw new ApiError("other", 0, message.message || "the live stream ended", null);
          }
        }
      }
      throw new ApiError("network", 0, "The live stream was closed.", null);
    } catch (err) {
      if (signal.aborted || (err && err.name === "AbortError")) break;
      if (err instanceof ApiError && (err.kind === "auth" || err.kind === "notfound" || err.status === 400)) {
        onState("stopped", err);
        return;
      }
      onState("retrying", err);
      const wait = err instanceof ApiError && err.retryAfter ? Number(err.retryAfter) * 1000 : delay;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      delay = Math.min(delay * 2, 15000);
    }
  }
  onState("stopped");
}
