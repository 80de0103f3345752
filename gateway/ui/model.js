// Events as the page shows them: labels of the API's enums, one row per
// event with the columns of the grid, every field flattened for the details,
// and CSV.

export const STEPS = [
  ["CONNECTION_STEP_ASSOCIATION", "Association"],
  ["CONNECTION_STEP_AUTHENTICATION", "Authentication"],
  ["CONNECTION_STEP_DHCP", "DHCP"],
  ["CONNECTION_STEP_DNS", "DNS"],
  ["CONNECTION_STEP_CONNECTION", "Connection"],
  ["CONNECTION_STEP_ROAM", "Roam"],
  ["CONNECTION_STEP_STICKY", "Sticky"],
  ["CONNECTION_STEP_DISASSOCIATION", "Disassociation"],
  ["CONNECTION_STEP_DEAUTHENTICATION", "Deauthentication"],
  ["CONNECTION_STEP_UNSPECIFIED", "Other"],
];
const STEP_LABEL = new Map(STEPS);

export const OUTCOMES = [
  ["success", "Success"],
  ["failure", "Failure"],
  ["info", "Informational"],
];
const OUTCOME_LABEL = new Map(OUTCOMES);

export function stepLabel(step) {
  return STEP_LABEL.get(step || "CONNECTION_STEP_UNSPECIFIED") || String(step);
}

// success | failure | info (anything not a success or failure is grey)
export function outcomeKind(outcome) {
  if (outcome === "OUTCOME_SUCCESS") return "success";
  if (outcome === "OUTCOME_FAILURE") return "failure";
  return "info";
}

export function outcomeLabel(kind) {
  return OUTCOME_LABEL.get(kind);
}

export function enumLabel(value, prefix) {
  if (!value) return "";
  const text = value.startsWith(prefix) ? value.slice(prefix.length) : value;
  return text.replace(/_/g, " ").toLowerCase().replace(/^\w/, (c) => c.toUpperCase());
}

export function bandLabel(band) {
  return { BAND_2_4_GHZ: "2.4 GHz", BAND_5_GHZ: "5 GHz", BAND_6_GHZ: "6 GHz" }[band] || "";
}

// "1.500s" (a JSON Duration) -> milliseconds, or null
export function durationMs(text) {
  if (!text) return null;
  const seconds = Number.parseFloat(text);
  return Number.isFinite(seconds) ? Math.round(seconds * 1000 * 10) / 10 : null;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

export function formatTime(ms, withDate = true) {
  const d = new Date(ms);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time;
}

// The grid's columns: key, header, value of a row, numeric (sorts as numbers)
export const COLUMNS = [
  ["time", "Time", (e) => e.time, true],
  ["step", "Step", (e) => e.stepLabel, false],
  ["outcome", "Outcome", (e) => e.outcomeLabel, false],
  ["subtype", "Subtype", (e) => e.raw.subtype || "", false],
  ["ap", "Access point", (e) => e.ap, false],
  ["ssid", "SSID", (e) => e.ssid, false],
  ["band", "Band", (e) => bandLabel(e.raw.radio && e.raw.radio.band), false],
  ["channel", "Channel", (e) => (e.raw.radio && e.raw.radio.channel) ?? "", true],
  ["quality", "Signal", (e) => (e.raw.radio && e.raw.radio.qualityValue) ?? "", true],
  ["category", "Failure category", (e) => e.category, false],
  ["specific", "Specific failure", (e) => e.specific, false],
  ["dhcp", "DHCP ms", (e) => e.dhcpMs ?? "", true],
  ["aaa", "AAA ms", (e) => e.aaaMs ?? "", true],
  ["dns", "DNS ms", (e) => e.dnsMs ?? "", true],
  ["vendor", "Vendor", (e) => enumLabel(e.raw.source && e.raw.source.vendor, "VENDOR_"), false],
];

// One event as the page uses it (the API's JSON stays in `raw`).
export function toRow(raw) {
  const failure = raw.failure || {};
  const timing = raw.timing || {};
  const ap = raw.accessPoint || {};
  const kind = outcomeKind(raw.outcome);
  const category = [failure.code !== undefined ? `#${failure.code}` : "", failure.reason || ""].filter(Boolean).join(" ");
  const specific = [failure.subCode !== undefined ? `#${failure.subCode}` : "", failure.subReason || ""]
    .filter(Boolean).join(" ");
  const row = {
    raw,
    id: raw.name || raw.eventId,
    time: Date.parse(raw.occurTime),
    step: raw.step || "CONNECTION_STEP_UNSPECIFIED",
    stepLabel: stepLabel(raw.step),
    kind,
    outcomeLabel: outcomeLabel(kind),
    ap: ap.name || ap.serial || "",
    apSerial: ap.serial || "",
    ssid: (raw.wlan && raw.wlan.ssid) || "",
    category,
    specific,
    dhcpMs: durationMs(timing.dhcpLatency),
    aaaMs: durationMs(timing.aaaLatency),
    dnsMs: durationMs(timing.dnsLatency),
  };
  row.cells = COLUMNS.map(([key, , value]) => (key === "time" ? formatTime(row.time) : String(value(row))));
  row.text = row.cells.join("\u0001").toLowerCase();
  return row;
}

// Every field of a JSON object as [dotted name, text] pairs.
export function flatten(value, prefix = "", out = []) {
  if (value === null || value === undefined) return out;
  if (Array.isArray(value)) {
    if (!value.length) out.push([prefix, "[]"]);
    value.forEach((item, i) => flatten(item, `${prefix}[${i}]`, out));
  } else if (typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length && prefix) out.push([prefix, "{}"]);
    for (const key of keys) flatten(value[key], prefix ? `${prefix}.${key}` : key, out);
  } else {
    out.push([prefix, String(value)]);
  }
  return out;
}

// The fields a person reads first, then every field of the event.
export function describe(row) {
  const e = row.raw;
  const failure = e.failure || {};
  const timing = e.timing || {};
  const lines = [
    ["Time", `${formatTime(row.time)} (${e.occurTime})`],
    ["Step", row.stepLabel],
    ["Outcome", row.outcomeLabel],
    ["Client", [e.client && e.client.macAddress, e.client && e.client.clientId].filter(Boolean).join(" / ")],
    ["Access point", [row.ap, row.apSerial && row.apSerial !== row.ap ? row.apSerial : ""].filter(Boolean).join(" ")],
    ["SSID", row.ssid],
    ["Failure category", failure.code !== undefined || failure.reason ? row.category : "none"],
    ["Specific failure", failure.subCode !== undefined || failure.subReason ? row.specific : "none"],
    ["DHCP latency", formatMs(row.dhcpMs)],
    ["AAA latency", formatMs(row.aaaMs)],
    ["DNS latency", formatMs(row.dnsMs)],
    ["Connection duration", formatMs(durationMs(timing.duration))],
  ].filter(([, value]) => value !== "");
  return [...lines, ...flatten(e).map(([name, value]) => [name, value])];
}

// RFC 4180 CSV; text that a spreadsheet would run as a formula is prefixed
// with an apostrophe.
export function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^[-+]?\d+(\.\d+)?$/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || /^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows) {
  const header = ["event", "occurTime", ...COLUMNS.slice(1).map(([, title]) => title)];
  const lines = [header.map(csvCell).join(",")];
  for (const row of rows) {
    lines.push([row.id, row.raw.occurTime, ...COLUMNS.slice(1).map(([, , value]) => value(row))].map(csvCell).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}
