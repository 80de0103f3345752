// The view's state, kept in the URL's query string so that a link
// reproduces the view (never the API key).

export const INTERVALS = { "2h": 2, "4h": 4, "8h": 8, "12h": 12, "1d": 24, "1w": 168 };
export const VIEWS = ["timeline", "grid", "network"];

const FIELDS = ["network", "client", "interval", "start", "end", "view", "sort", "q", "step", "outcome", "live",
                "ap", "apName", "ssid", "event"];

export function readState(search = window.location.search) {
  const params = new URLSearchParams(search);
  const state = {};
  for (const name of FIELDS) state[name] = params.get(name) || "";
  if (!VIEWS.includes(state.view)) state.view = "timeline";
  if (!(state.start && state.end) && !INTERVALS[state.interval]) state.interval = "2h";
  if (state.start && state.end) state.interval = "";
  state.live = state.live === "1" ? "1" : "";
  return state;
}

export function writeState(state, { push = false } = {}) {
  const params = new URLSearchParams();
  for (const name of FIELDS) {
    if (state[name]) params.set(name, state[name]);
  }
  const url = `${window.location.pathname}?${params.toString()}`;
  if (url === `${window.location.pathname}${window.location.search}`) return;
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}

export function linkTo(state, changes) {
  const params = new URLSearchParams();
  const next = { ...state, ...changes };
  for (const name of FIELDS) {
    if (next[name]) params.set(name, next[name]);
  }
  return `?${params.toString()}`;
}

// The interval's bounds in ms: a preset ends now, a custom range is fixed.
export function bounds(state, now = Date.now()) {
  if (state.start && state.end) {
    const start = Date.parse(state.start);
    const end = Date.parse(state.end);
    if (Number.isFinite(start) && Number.isFinite(end) && end > start) return { start, end };
  }
  const hours = INTERVALS[state.interval] || 2;
  return { start: now - hours * 3600 * 1000, end: now };
}

// A MAC address in any common form (aa:bb:.., aa-bb-.., aabb.ccdd.eeff, 12 hex digits)
export function isMac(text) {
  const hex = text.replace(/[:.\-]/g, "");
  return /^[0-9a-fA-F]{12}$/.test(hex) && /^([0-9a-fA-F]{2}([:\-]?|$)){6}$|^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$/.test(text);
}

// The events filter of the chosen client, in the REST parameters' names.
export function clientFilter(client) {
  if (!client) return {};
  return isMac(client) ? { clientMacAddress: client } : { clientId: client };
}
