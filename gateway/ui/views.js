// The summary strip, the network view (access points and SSIDs ranked by
// failure rate, each linking to its clients) and the details panel.

import { formatMs, durationMs, stepLabel } from "./model.js";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const count = (v) => Number(v || 0);

export function failureRate(totals) {
  const attempts = count(totals.attemptCount);
  if (!attempts) return null;
  return totals.successRate !== undefined ? 1 - totals.successRate : count(totals.failureCount) / attempts;
}

const percent = (rate) => (rate === null ? "n/a" : `${(rate * 100).toFixed(1)} %`);

const BASIS = {
  TIME_TO_CONNECT_BASIS_TIMING_FACTS: "from the vendors' timing facts",
  TIME_TO_CONNECT_BASIS_EVENT_SEQUENCE: "from the sequence of events",
  TIME_TO_CONNECT_BASIS_MIXED: "from timing facts and event sequences",
};

// The strip: success rate, failures by step and by category, time to connect.
export function renderSummary(root, { total, bySteps, byCategory, ttc }) {
  const totals = (total.groups && total.groups[0] && total.groups[0].totals) || {};
  const attempts = count(totals.attemptCount);
  const rate = attempts ? (totals.successRate ?? count(totals.successCount) / attempts) : null;
  const steps = (bySteps.groups || [])
    .map((g) => [stepLabel(g.key && g.key.step), count(g.totals && g.totals.failureCount)])
    .filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const categories = (byCategory.groups || [])
    .map((g) => {
      const code = g.key && g.key.failureCode;
      const reason = ((g.topFailureReasons || [])[0] || {}).reason || "";
      return [`${code !== undefined ? `#${code}` : "no category"}${reason ? ` ${reason}` : ""}`,
              count(g.totals && g.totals.failureCount)];
    })
    .filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const t = (ttc.groups || [])[0];
  const list = (items, empty) => (items.length
    ? el("ul", {}, ...items.slice(0, 6).map(([name, n]) => el("li", { text: `${name}: ${n}` })))
    : el("p", { class: "none", text: empty }));
  root.replaceChildren(
    el("div", { class: "tile", "data-tile": "success-rate" },
       el("h3", { text: "Success rate" }),
       el("p", { class: "big", text: rate === null ? "n/a" : `${(rate * 100).toFixed(1)} %` }),
       el("p", { text: `${count(totals.successCount)} of ${attempts} step attempts, ${count(totals.failureCount)} failed` })),
    el("div", { class: "tile", "data-tile": "by-step" }, el("h3", { text: "Failures by step" }), list(steps, "none")),
    el("div", { class: "tile", "data-tile": "by-category" }, el("h3", { text: "Failures by category" }),
       list(categories, "none")),
    el("div", { class: "tile", "data-tile": "time-to-connect" }, el("h3", { text: "Time to connect" }),
       t && count(t.sampleCount)
         ? el("p", { class: "big", text: `p50 ${formatMs(durationMs(t.p50))} · p90 ${formatMs(durationMs(t.p90))} · p99 ${
           formatMs(durationMs(t.p99))}` })
         : el("p", { class: "big", text: "n/a" }),
       el("p", { text: t && count(t.sampleCount)
         ? `${count(t.sampleCount)} connections, ${BASIS[t.basis] || "source unknown"}`
         : "no connection in the interval" })),
  );
}

function ranking(title, groups, nameOf, linkOf, caption) {
  const rows = groups.map((g) => ({ g, rate: failureRate(g.totals || {}) }))
    .sort((a, b) => (b.rate ?? -1) - (a.rate ?? -1) || count(b.g.totals.failureCount) - count(a.g.totals.failureCount));
  const table = el("table", { class: "ranking", "data-ranking": title.toLowerCase() },
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, ...["#", title, "Attempts", "Failures", "Failure rate", ""].map(
      (h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows.map(({ g, rate }, i) => {
      const totals = g.totals || {};
      const name = nameOf(g.key || {});
      const link = linkOf(g.key || {});
      return el("tr", {},
        el("td", { text: String(i + 1) }),
        el("th", { scope: "row", text: name }),
        el("td", { text: String(count(totals.attemptCount)) }),
        el("td", { text: String(count(totals.failureCount)) }),
        el("td", { text: percent(rate) }),
        el("td", {}, link ? el("a", { href: link.href, text: link.text }) : null));
    })));
  if (!rows.length) table.append(el("tbody", {}, el("tr", {}, el("td", { colspan: "6", text: "No events in this interval." }))));
  return table;
}

// The network's access points and SSIDs ranked by failure rate, or (with an
// access point or SSID chosen) that one's clients.
export function renderNetwork(root, data, state, linkTo) {
  const apName = (k) => (k.accessPoint && (k.accessPoint.name || k.accessPoint.serial)) || "(no access point)";
  const clientName = (k) => (k.client && (k.client.macAddress || k.client.clientId)) || "(unknown client)";
  if (data.clients) {
    const what = state.ssid ? `SSID ${state.ssid}` : `access point ${state.ap || state.apName}`;
    root.replaceChildren(
      el("p", {}, el("a", { href: linkTo({ ap: "", apName: "", ssid: "" }), text: "← All access points and SSIDs" })),
      ranking("Client", data.clients, clientName, (k) => {
        const key = clientName(k);
        return { href: linkTo({ client: key, view: "timeline", ap: "", apName: "", ssid: "" }), text: "Timeline" };
      }, `Clients of ${what}, most failures first`),
    );
    return;
  }
  root.replaceChildren(
    ranking("Access point", data.aps, apName, (k) => {
      const ap = k.accessPoint || {};
      if (!ap.serial && !ap.name) return null;
      return { href: linkTo(ap.serial ? { ap: ap.serial, apName: "", ssid: "" } : { apName: ap.name, ap: "", ssid: "" }),
               text: "Clients" };
    }, "Access points by failure rate"),
    ranking("SSID", data.ssids, (k) => k.ssid || "(no SSID)",
            (k) => (k.ssid ? { href: linkTo({ ssid: k.ssid, ap: "", apName: "" }), text: "Clients" } : null),
            "SSIDs by failure rate"),
  );
}

export function renderDetails(title, body, heading, lines) {
  title.textContent = heading;
  body.replaceChildren(...lines.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: value })]));
}
