// The page: sign in, pick a network, a client and an interval, then the
// Timeline, the Grid or the Network view, the summary strip and the live
// tail. Reads only the gateway's public REST API (/v1), same origin.

import { ApiError, forgetKey, get, getAll, storeKey, storedKey, watch } from "./api.js";
import { OUTCOMES, STEPS, describe, formatTime, toCsv, toRow } from "./model.js";
import { INTERVALS, VIEWS, bounds, clientFilter, linkTo, readState, writeState } from "./state.js";
import { Timeline } from "./timeline.js";
import { Grid } from "./grid.js";
import { renderDetails, renderNetwork, renderSummary } from "./views.js";

// The most events one view loads (10 pages of the API's largest); the rest is
// left out, and said so.
const MAX_EVENTS = 50000;
const MAX_GROUPS = 5000;

const $ = (id) => document.getElementById(id);
let state = readState();
let rows = [];
let seen = new Set();
let sessions = [];
let loading = null;
let live = null;
let opener = null;
let view = { start: 0, end: 0 };

const timeline = new Timeline($("timeline"), $("tooltip"), $("timeline-focus"), (item) => openDetails(item, $("timeline")));
const grid = new Grid({
  scroll: $("grid-scroll"), head: $("grid-head"), body: $("grid-body"), count: $("grid-count"),
  onOpen: (row, button) => openDetails(row, button),
  onSort: (sort) => { state.sort = sort; writeState(state); },
});

// --- messages ---

function explain(err) {
  const retry = err.retryAfter ? ` Retry in ${err.retryAfter} s.` : "";
  switch (err.kind) {
    case "auth":
      return err.status === 401
        ? "The API key was refused (HTTP 401): it is unknown, expired or revoked. Sign in with a valid key."
        : `This API key may not read these events (HTTP 403): ${err.message}`;
    case "rate":
      return `Rate limited (HTTP 429): too many requests.${retry || " Retry shortly."} (${err.message})`;
    case "network":
      return "The gateway cannot be reached (network error): check that connlog is running, then press Refresh.";
    case "unavailable":
      return `The service is temporarily unavailable (HTTP 503).${retry}`;
    default:
      return `The request failed (HTTP ${err.status}): ${err.message}`;
  }
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
}

function showError(err) {
  if (err && err.name === "AbortError") return;
  if (!(err instanceof ApiError)) {
    console.error(err);
    showMessage(`Something went wrong in the page: ${err && err.message}`, "other");
    return;
  }
  showMessage(explain(err), err.kind);
  if (err.kind === "auth" && err.status === 401) signOut(false);
}

function status(text) {
  $("status").textContent = text;
}

function markReady() {
  requestAnimationFrame(() => {
    document.documentElement.dataset.state = "ready";
    document.documentElement.dataset.loadMs = String(Math.round(performance.now()));
  });
}

// --- sign in ---

function showSignedIn(on) {
  $("sign-in").hidden = on;
  $("app").hidden = !on;
  $("who").hidden = !on;
}

function signOut(clearMessage = true) {
  stopLive();
  if (loading) loading.abort();
  forgetKey();
  rows = [];
  seen = new Set();
  showSignedIn(false);
  if (clearMessage) showMessage("");
  status("Signed out.");
  $("api-key").value = "";
  $("api-key").focus();
}

async function signIn(key) {
  storeKey(key);
  showMessage("");
  status("Signing in…");
  try {
    await loadNetworks();
  } catch (err) {
    if (err instanceof ApiError && err.kind === "auth") {
      forgetKey();
      showMessage(explain(err), "auth");
      status("");
      showSignedIn(false);
      $("api-key").focus();
      return;
    }
    showSignedIn(false);
    forgetKey();
    showError(err);
    status("");
    return;
  }
  showSignedIn(true);
  status("Signed in.");
  applyControls();
  if (!state.client) $("client-search").focus();
  await load();
  if (state.live) startLive();
}

// --- networks and clients ---

async function loadNetworks() {
  const { items } = await getAll("networks", "networks", { pageSize: 1000 }, 10000);
  const select = $("network");
  const options = items.map((n) => {
    const option = document.createElement("option");
    option.value = n.networkId;
    option.textContent = n.displayName && n.displayName !== n.networkId ? `${n.displayName} (${n.networkId})` : n.networkId;
    return option;
  });
  if (state.network && !items.some((n) => n.networkId === state.network)) {
    const option = document.createElement("option");
    option.value = state.network;
    option.textContent = state.network;
    options.unshift(option);
  }
  select.replaceChildren(...options);
  if (!options.length) {
    showMessage("This key's tenant has no networks yet: no events have been stored.", "empty");
    return;
  }
  if (!state.network) state.network = options[0].value;
  select.value = state.network;
  writeState(state);
}

const pathPart = (text) => encodeURIComponent(text).replace(/%3A/gi, ":").replace(/%40/g, "@");

function clientKeyOf(client) {
  const at = client.name.indexOf("/clients/");
  return at >= 0 ? client.name.slice(at + "/clients/".length) : client.macAddress || client.clientId;
}

const combo = { options: [], active: -1, timer: 0, abort: null };

function renderOptions() {
  const list = $("client-options");
  const input = $("client-search");
  list.replaceChildren(...combo.options.map((c, i) => {
    const li = document.createElement("li");
    li.id = `client-option-${i}`;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === combo.active));
    li.dataset.key = clientKeyOf(c);
    const who = [c.macAddress, c.clientId].filter(Boolean).join(" · ");
    li.textContent = `${who} — ${c.eventCount || 0} events, ${c.failureCount || 0} failures`;
    li.addEventListener("mousedown", (e) => e.preventDefault());
    li.addEventListener("click", () => chooseClient(li.dataset.key));
    return li;
  }));
  const open = combo.options.length > 0;
  list.hidden = !open;
  input.setAttribute("aria-expanded", String(open));
  if (combo.active >= 0 && open) {
    input.setAttribute("aria-activedescendant", `client-option-${combo.active}`);
    $(`client-option-${combo.active}`).scrollIntoView({ block: "nearest" });
  } else {
    input.removeAttribute("aria-activedescendant");
  }
}

function closeOptions() {
  combo.options = [];
  combo.active = -1;
  renderOptions();
}

async function searchClients(text) {
  if (combo.abort) combo.abort.abort();
  if (!state.network) return;
  combo.abort = new AbortController();
  try {
    const body = await get(`networks/${pathPart(state.network)}/clients`, { query: text.trim(), pageSize: 20 },
                           combo.abort.signal);
    combo.options = body.clients || [];
    combo.active = -1;
    renderOptions();
    status(combo.options.length ? `${combo.options.length} clients match; use the arrow keys to choose.`
                                : "No client matches.");
  } catch (err) {
    showError(err);
  }
}

function chooseClient(key) {
  closeOptions();
  $("client-search").value = key;
  state.client = key;
  state.event = "";
  writeState(state, { push: true });
  restartLive();
  load();
}

// --- controls ---

function applyControls() {
  for (const button of $("interval-buttons").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.interval === state.interval));
  }
  const { start, end } = bounds(state);
  $("custom-start").value = localInput(start);
  $("custom-end").value = localInput(end);
  $("client-search").value = state.client;
  if (state.network) $("network").value = state.network;
  for (const tab of $("tabs").querySelectorAll("[role=tab]")) {
    const on = tab.dataset.view === state.view;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`view-${tab.dataset.view}`).hidden = !on;
  }
  $("grid-filter").value = state.q;
  $("grid-step").value = state.step;
  $("grid-outcome").value = state.outcome;
  const [key, dir] = (state.sort || "time:asc").split(":");
  grid.sort = { key, dir };
  grid.filter = { text: state.q, step: state.step, outcome: state.outcome };
  grid.setSort(key, dir);
  $("live").setAttribute("aria-pressed", String(Boolean(state.live)));
  $("live").textContent = state.live ? "Live: on" : "Live";
}

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// --- loading ---

async function load() {
  if (loading) loading.abort();
  loading = new AbortController();
  const signal = loading.signal;
  document.documentElement.dataset.state = "loading";
  showMessage("");
  view = bounds(state);
  const range = { startTime: new Date(view.start).toISOString(), endTime: new Date(view.end).toISOString() };
  const network = state.network;
  if (!network) {
    markReady();
    return;
  }
  const base = `networks/${pathPart(network)}`;
  const filter = clientFilter(state.client);
  // (started at once, alongside the events; their errors are reported after them)
  const settle = (promise) => promise.then(() => null, (err) => err);
  const summary = settle(loadSummary(base, { ...range, ...filter }, signal));
  const networkView = settle(state.view === "network" ? loadNetworkView(base, range, signal) : Promise.resolve());
  try {
    if (state.client) {
      status(`Loading the events of ${state.client}…`);
      const [events, found] = await Promise.all([
        getAll(`${base}/connectionEvents`, "connectionEvents", { ...range, ...filter, pageSize: 1000 }, MAX_EVENTS,
               signal, (n) => status(`Loading the events of ${state.client}… ${n}`)),
        getAll(`${base}/clients/${pathPart(state.client)}/sessions`, "clientSessions", { ...range, pageSize: 500 },
               5000, signal),
      ]);
      rows = events.items.map(toRow);
      seen = new Set(rows.map((r) => r.id));
      sessions = found.items;
      render();
      if (!rows.length) {
        status(`No events for ${state.client} between ${formatTime(view.start)} and ${formatTime(view.end)}.`);
        showMessage(`No events for ${state.client} in this interval: choose a longer interval or another client.`,
                    "empty");
      } else {
        status(`${rows.length} events and ${sessions.length} session${sessions.length === 1 ? "" : "s"} of ${state.client}${
          events.truncated ? ` (only the first ${MAX_EVENTS} shown)` : ""}.`);
      }
    } else {
      rows = [];
      seen = new Set();
      sessions = [];
      render();
      status("Pick a client to see its timeline and events.");
    }
    const failed = (await Promise.all([summary, networkView])).find(Boolean);
    if (failed) throw failed;
    if (state.event) reopenEvent();
  } catch (err) {
    if (signal.aborted) return;
    showError(err);
  }
  if (!signal.aborted) markReady();
}

function render() {
  timeline.setData(rows, sessions, view.start, view.end);
  grid.setRows(rows);
}

async function loadSummary(base, params, signal) {
  const root = $("summary");
  root.setAttribute("aria-busy", "true");
  try {
    const [total, bySteps, byCategory, ttc] = await Promise.all([
      get(`${base}/connectionEvents:summarize`, params, signal),
      get(`${base}/connectionEvents:summarize`, { ...params, groupBy: "GROUP_BY_STEP", pageSize: 100 }, signal),
      get(`${base}/connectionEvents:summarize`, { ...params, groupBy: "GROUP_BY_FAILURE_CATEGORY", pageSize: 100 },
          signal),
      get(`${base}/connectionEvents:summarizeTimeToConnect`, params, signal),
    ]);
    renderSummary(root, { total, bySteps, byCategory, ttc });
  } catch (err) {
    if (signal.aborted) return;
    root.textContent = "";
    throw err;
  } finally {
    root.removeAttribute("aria-busy");
  }
}

async function loadNetworkView(base, range, signal) {
  const root = $("network-view");
  root.setAttribute("aria-busy", "true");
  const params = { ...range, pageSize: 1000 };
  const summarize = (extra) => getAll(`${base}/connectionEvents:summarize`, "groups", { ...params, ...extra },
                                      MAX_GROUPS, signal).then((r) => r.items);
  try {
    if (state.ap || state.apName || state.ssid) {
      const scope = state.ssid ? { ssid: state.ssid }
        : state.ap ? { accessPointSerial: state.ap } : { accessPointName: state.apName };
      const clients = await summarize({ ...scope, groupBy: "GROUP_BY_CLIENT" });
      renderNetwork(root, { clients }, state, (changes) => linkTo(state, changes));
    } else {
      const [aps, ssids] = await Promise.all([summarize({ groupBy: "GROUP_BY_ACCESS_POINT" }),
                                              summarize({ groupBy: "GROUP_BY_SSID" })]);
      renderNetwork(root, { aps, ssids }, state, (changes) => linkTo(state, changes));
    }
  } finally {
    root.removeAttribute("aria-busy");
  }
}

// --- details ---

function openDetails(item, from) {
  const panel = $("details");
  if (!item) {
    closeDetails();
    return;
  }
  opener = from || document.activeElement;
  if (item.session) {
    const s = item.session;
    renderDetails($("details-title"), $("details-body"), `Session ${formatTime(item.time)}`,
                  Object.entries(s).flatMap(([k, v]) => (typeof v === "object" ? [[k, JSON.stringify(v)]] : [[k, String(v)]])));
  } else {
    renderDetails($("details-title"), $("details-body"), `${item.stepLabel} ${item.outcomeLabel}`, describe(item));
    state.event = item.id;
    writeState(state);
  }
  panel.hidden = false;
  $("details-title").focus();
}

function closeDetails() {
  $("details").hidden = true;
  if (state.event) {
    state.event = "";
    writeState(state);
  }
  if (opener && document.contains(opener)) opener.focus();
  opener = null;
}

function reopenEvent() {
  const row = rows.find((r) => r.id === state.event);
  if (row) openDetails(row, $("timeline"));
}

// --- live tail ---

function startLive() {
  stopLive();
  if (!state.network) return;
  const controller = new AbortController();
  live = { controller, received: 0, frame: 0 };
  const current = live;
  const params = { ...clientFilter(state.client) };
  status("Live: connecting…");
  watch(`networks/${pathPart(state.network)}/connectionEvents:watch`, params, controller.signal, (message) => {
    const fresh = (message.connectionEvents || []).map(toRow).filter((r) => !seen.has(r.id));
    if (!fresh.length) return;
    for (const r of fresh) seen.add(r.id);
    rows = rows.concat(fresh);
    current.received += fresh.length;
    const latest = Math.max(...fresh.map((r) => r.time), Date.now());
    if (!(state.start && state.end)) view.end = Math.max(view.end, latest);
    if (!current.frame) {
      current.frame = requestAnimationFrame(() => {
        current.frame = 0;
        render();
      });
    }
    status(`Live: ${current.received} new event${current.received === 1 ? "" : "s"} received.`);
    $("live").dataset.received = String(current.received);
  }, (phase, err) => {
    if (live !== current) return;
    $("live").dataset.phase = phase;
    if (phase === "open") {
      if ($("message").dataset.kind !== "empty") showMessage("");
      status(`Live: following new events${state.client ? ` of ${state.client}` : ""}.`);
    } else if (phase === "retrying") {
      showMessage(`${err instanceof ApiError ? explain(err) : "The live stream was interrupted."} Live mode reconnects by itself.`,
                  err instanceof ApiError ? err.kind : "network");
    } else if (phase === "stopped" && err) {
      showError(err);
      setLive(false);
    }
  });
}

function stopLive() {
  if (live) {
    live.controller.abort();
    if (live.frame) cancelAnimationFrame(live.frame);
    live = null;
  }
  $("live").dataset.phase = "stopped";
}

function restartLive() {
  if (state.live) startLive();
}

function setLive(on) {
  state.live = on ? "1" : "";
  writeState(state);
  $("live").setAttribute("aria-pressed", String(on));
  $("live").textContent = on ? "Live: on" : "Live";
  if (on) startLive();
  else {
    stopLive();
    status("Live mode off.");
  }
}

// --- wiring ---

function setView(name, focus = false) {
  state.view = name;
  writeState(state, { push: true });
  applyControls();
  if (focus) $(`tab-${name}`).focus();
  if (name === "network") {
    loadNetworkView(`networks/${pathPart(state.network)}`, {
      startTime: new Date(view.start).toISOString(), endTime: new Date(view.end).toISOString(),
    }, (loading || new AbortController()).signal).catch(showError);
  }
  if (name === "timeline") timeline.draw();
  if (name === "grid") grid.paint(true);
}

function wire() {
  for (const [step, label] of STEPS) $("grid-step").append(new Option(label, step));
  for (const [kind, label] of OUTCOMES) $("grid-outcome").append(new Option(label, kind));

  $("sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (key) signIn(key);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("network").addEventListener("change", () => {
    state.network = $("network").value;
    state.client = "";
    state.ap = state.apName = state.ssid = state.event = "";
    writeState(state, { push: true });
    applyControls();
    restartLive();
    load();
  });
  const search = $("client-search");
  search.addEventListener("input", () => {
    clearTimeout(combo.timer);
    combo.timer = setTimeout(() => searchClients(search.value), 250);
  });
  search.addEventListener("keydown", (e) => {
    const n = combo.options.length;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!n) {
        searchClients(search.value);
        return;
      }
      combo.active = e.key === "ArrowDown" ? (combo.active + 1) % n : (combo.active - 1 + n) % n;
      renderOptions();
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (combo.active >= 0 && n) chooseClient(clientKeyOf(combo.options[combo.active]));
      else if (n === 1) chooseClient(clientKeyOf(combo.options[0]));
      else if (search.value.trim()) chooseClient(search.value.trim());
    } else if (e.key === "Escape") {
      closeOptions();
    }
  });
  search.addEventListener("blur", () => setTimeout(closeOptions, 150));

  for (const button of $("interval-buttons").querySelectorAll("button")) {
    button.addEventListener("click", () => {
      state.interval = button.dataset.interval;
      state.start = state.end = "";
      writeState(state, { push: true });
      applyControls();
      load();
    });
  }
  $("custom-apply").addEventListener("click", () => {
    const start = Date.parse($("custom-start").value);
    const end = Date.parse($("custom-end").value);
    if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
      showMessage("The custom range needs a start before its end.", "input");
      return;
    }
    state.start = new Date(start).toISOString();
    state.end = new Date(end).toISOString();
    state.interval = "";
    writeState(state, { push: true });
    applyControls();
    load();
  });
  $("refresh").addEventListener("click", () => load());
  $("live").addEventListener("click", () => setLive(!state.live));

  const tabs = [...$("tabs").querySelectorAll("[role=tab]")];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => setView(tab.dataset.view));
    tab.addEventListener("keydown", (e) => {
      const delta = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (delta) {
        e.preventDefault();
        setView(tabs[(i + delta + tabs.length) % tabs.length].dataset.view, true);
      }
    });
  });

  let filterTimer = 0;
  $("grid-filter").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      state.q = $("grid-filter").value;
      writeState(state);
      grid.setFilter({ text: state.q });
    }, 150);
  });
  $("grid-step").addEventListener("change", () => {
    state.step = $("grid-step").value;
    writeState(state);
    grid.setFilter({ step: state.step });
  });
  $("grid-outcome").addEventListener("change", () => {
    state.outcome = $("grid-outcome").value;
    writeState(state);
    grid.setFilter({ outcome: state.outcome });
  });
  $("csv").addEventListener("click", () => {
    const blob = new Blob([toCsv(grid.shown)], { type: "text/csv;charset=utf-8" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `connlog-${state.network}-${(state.client || "all").replace(/[^\w.-]+/g, "_")}.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });

  $("details-close").addEventListener("click", closeDetails);
  $("details").addEventListener("keydown", (e) => { if (e.key === "Escape") closeDetails(); });
  window.addEventListener("popstate", () => {
    state = readState();
    applyControls();
    restartLive();
    load();
  });
}

function main() {
  wire();
  if (!INTERVALS[state.interval] && !(state.start && state.end)) state.interval = "2h";
  if (!VIEWS.includes(state.view)) state.view = "timeline";
  const key = storedKey();
  if (key) {
    signIn(key);
  } else {
    showSignedIn(false);
    markReady();
  }
}

main();
