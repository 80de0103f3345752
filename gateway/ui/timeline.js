// The Timeline: one lane per step on a time axis, drawn on a canvas (fast
// with tens of thousands of events), the client's sessions as spans on a
// lane of their own with each roam marked where the access point changed.
// Outcomes differ by colour AND shape (success: green circle, failure: red
// triangle, informational: grey square), and every lane says its counts in
// words. Keyboard: Left/Right the previous/next event in time, Up/Down the
// nearest item of the lane above/below, Home/End, Enter opens the details.

import { STEPS, formatMs, formatTime, outcomeLabel } from "./model.js";

const GUTTER = 170;
const AXIS = 30;
const LANE = 34;
const RIGHT = 16;
const COLOURS = { success: "#1a7f37", failure: "#cf222e", info: "#6e7781" };
const SESSION_FILL = { SESSION_OUTCOME_CONNECTED: "rgba(26,127,55,0.22)", SESSION_OUTCOME_FAILED: "rgba(207,34,46,0.22)" };
const TICKS = [1, 5, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800]
  .map((s) => s * 1000);

function lowerBound(items, time) {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].time < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function nearest(items, time) {
  if (!items.length) return -1;
  const i = lowerBound(items, time);
  if (i === 0) return 0;
  if (i === items.length) return items.length - 1;
  return time - items[i - 1].time <= items[i].time - time ? i - 1 : i;
}

function sessionLabel(s) {
  const aps = (s.accessPoints || []).map((v) => (v.accessPoint && (v.accessPoint.name || v.accessPoint.serial)) || v.bssid || "?");
  return aps;
}

export class Timeline {
  constructor(canvas, tooltip, focusText, onOpen) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.focusText = focusText;
    this.onOpen = onOpen;
    this.lanes = [];
    this.ordered = [];
    this.focus = null; // {lane, index}
    this.start = 0;
    this.end = 1;
    this.pending = false;
    this.width = 960;
    canvas.addEventListener("keydown", (e) => this.key(e));
    canvas.addEventListener("mousemove", (e) => this.hover(e));
    canvas.addEventListener("mouseleave", () => { this.tooltip.hidden = true; });
    canvas.addEventListener("click", (e) => this.click(e));
    canvas.addEventListener("focus", () => { if (!this.focus) this.moveTo(this.firstFocus()); else this.draw(); });
    canvas.addEventListener("blur", () => this.draw());
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  setData(rows, sessions, start, end) {
    this.start = start;
    this.end = Math.max(end, start + 1);
    const byStep = new Map(STEPS.map(([step]) => [step, []]));
    for (const row of rows) (byStep.get(row.step) || byStep.get("CONNECTION_STEP_UNSPECIFIED")).push(row);
    const sessionItems = sessions.map((s) => ({
      time: Date.parse(s.startTime), endTime: Date.parse(s.endTime || s.startTime), session: s,
    })).filter((s) => Number.isFinite(s.time)).sort((a, b) => a.time - b.time);
    this.lanes = [{ key: "sessions", label: "Sessions", items: sessionItems }];
    for (const [step, label] of STEPS) {
      const items = byStep.get(step);
      if (step === "CONNECTION_STEP_UNSPECIFIED" && !items.length) continue;
      items.sort((a, b) => a.time - b.time);
      const counts = { success: 0, failure: 0, info: 0 };
      for (const row of items) counts[row.kind] += 1;
      this.lanes.push({ key: step, label, items, counts });
    }
    this.ordered = rows.slice().sort((a, b) => a.time - b.time);
    if (this.focus) {
      const lane = this.lanes[this.focus.lane];
      if (!lane || this.focus.index >= lane.items.length) this.focus = null;
    }
    this.canvas.setAttribute("aria-label",
      `Timeline of ${rows.length} events and ${sessions.length} sessions from ${formatTime(start)} to ${formatTime(end)}`);
    this.canvas.dataset.events = String(rows.length);
    this.canvas.dataset.sessions = String(sessions.length);
    this.draw();
  }

  x(time) {
    const width = this.width - GUTTER - RIGHT;
    return GUTTER + ((time - this.start) / (this.end - this.start)) * width;
  }

  time(x) {
    const width = this.width - GUTTER - RIGHT;
    return this.start + ((x - GUTTER) / width) * (this.end - this.start);
  }

  laneY(index) {
    return AXIS + index * LANE + LANE / 2;
  }

  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.paint();
    });
  }

  paint() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    this.width = Math.max(480, canvas.parentElement.clientWidth);
    const height = AXIS + this.lanes.length * LANE + 8;
    canvas.width = Math.round(this.width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = `${this.width}px`;
    canvas.style.height = `${height}px`;
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, this.width, height);
    g.font = "12px system-ui, sans-serif";
    this.paintAxis(g, height);
    this.lanes.forEach((lane, i) => this.paintLane(g, lane, i));
    this.paintFocus(g, height);
  }

  paintAxis(g, height) {
    const span = this.end - this.start;
    const room = (this.width - GUTTER - RIGHT) / 90;
    const step = TICKS.find((t) => span / t <= room) || 7 * 86400000;
    const offset = new Date(this.start).getTimezoneOffset() * 60000;
    let tick = Math.ceil((this.start - offset) / step) * step + offset;
    g.fillStyle = "#24292f";
    g.strokeStyle = "#d0d7de";
    g.textBaseline = "middle";
    g.textAlign = "center";
    for (; tick <= this.end; tick += step) {
      const x = this.x(tick);
      g.beginPath();
      g.moveTo(x + 0.5, AXIS - 6);
      g.lineTo(x + 0.5, height - 4);
      g.stroke();
      const d = new Date(tick);
      const midnight = d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0;
      const label = step >= 86400000 || midnight
        ? `${d.getMonth() + 1}/${d.getDate()}`
        : step < 60000 ? formatTime(tick, false).slice(0, 8) : formatTime(tick, false).slice(0, 5);
      g.fillText(label, x, AXIS / 2 - 2);
    }
    g.textAlign = "left";
  }

  paintLane(g, lane, i) {
    const y = this.laneY(i);
    g.fillStyle = i % 2 ? "#f6f8fa" : "#ffffff";
    g.fillRect(0, y - LANE / 2, this.width, LANE);
    g.fillStyle = "#24292f";
    g.font = "600 12px system-ui, sans-serif";
    g.fillText(lane.label, 8, y - 7);
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#57606a";
    const words = lane.counts
      ? `${lane.counts.success} ok · ${lane.counts.failure} failed · ${lane.counts.info} info`
      : `${lane.items.length} session${lane.items.length === 1 ? "" : "s"}`;
    g.fillText(words, 8, y + 8);
    g.save();
    g.beginPath();
    g.rect(GUTTER - 6, y - LANE / 2, this.width - GUTTER + 6, LANE);
    g.clip();
    if (lane.key === "sessions") this.paintSessions(g, lane, y);
    else this.paintMarks(g, lane, y);
    g.restore();
  }

  paintSessions(g, lane, y) {
    for (const item of lane.items) {
      const s = item.session;
      const x0 = this.x(item.time);
      const x1 = Math.max(x0 + 3, this.x(item.endTime));
      g.fillStyle = SESSION_FILL[s.outcome] || "rgba(110,119,129,0.22)";
      g.fillRect(x0, y - 9, x1 - x0, 18);
      g.strokeStyle = s.outcome === "SESSION_OUTCOME_FAILED" ? COLOURS.failure
        : s.outcome === "SESSION_OUTCOME_CONNECTED" ? COLOURS.success : COLOURS.info;
      g.lineWidth = 1.5;
      g.strokeRect(x0, y - 9, x1 - x0, 18);
      const visits = s.accessPoints || [];
      const names = sessionLabel(s);
      if (visits.length && x1 - x0 > 60) {
        g.fillStyle = "#24292f";
        g.font = "11px system-ui, sans-serif";
        g.fillText(names[0], x0 + 4, y + 1, Math.max(20, (visits[1] ? this.x(Date.parse(visits[1].startTime)) : x1) - x0 - 8));
      }
      for (let v = 1; v < visits.length; v += 1) {
        const rx = this.x(Date.parse(visits[v].startTime));
        g.fillStyle = "#8250df";
        g.beginPath();
        g.moveTo(rx, y - 8);
        g.lineTo(rx + 6, y);
        g.lineTo(rx, y + 8);
        g.lineTo(rx - 6, y);
        g.closePath();
        g.fill();
        const next = v + 1 < visits.length ? this.x(Date.parse(visits[v + 1].startTime)) : x1;
        if (next - rx > 50) {
          g.fillStyle = "#24292f";
          g.fillText(`→ ${names[v]}`, rx + 8, y + 1, next - rx - 12);
        }
      }
    }
  }

  paintMarks(g, lane, y) {
    for (const kind of ["info", "success", "failure"]) { // failures on top
      g.fillStyle = COLOURS[kind];
      g.strokeStyle = "#ffffff";
      g.lineWidth = 1;
      g.beginPath();
      for (const row of lane.items) {
        if (row.kind !== kind) continue;
        const x = this.x(row.time);
        if (kind === "success") {
          g.moveTo(x + 5, y);
          g.arc(x, y, 5, 0, Math.PI * 2);
        } else if (kind === "failure") {
          g.moveTo(x, y - 7);
          g.lineTo(x + 6.5, y + 5);
          g.lineTo(x - 6.5, y + 5);
          g.closePath();
        } else {
          g.rect(x - 4.5, y - 4.5, 9, 9);
        }
      }
      g.fill();
      g.stroke();
    }
  }

  paintFocus(g, height) {
    const item = this.focused();
    if (!item) return;
    const x = this.x(item.time);
    const y = this.laneY(this.focus.lane);
    g.strokeStyle = "#0969da";
    g.setLineDash([3, 3]);
    g.beginPath();
    g.moveTo(x + 0.5, AXIS);
    g.lineTo(x + 0.5, height - 4);
    g.stroke();
    g.setLineDash([]);
    g.lineWidth = document.activeElement === this.canvas ? 3 : 2;
    g.beginPath();
    g.arc(x, y, 11, 0, Math.PI * 2);
    g.stroke();
    g.lineWidth = 1;
  }

  focused() {
    if (!this.focus) return null;
    const lane = this.lanes[this.focus.lane];
    return lane ? lane.items[this.focus.index] || null : null;
  }

  firstFocus() {
    if (this.ordered.length) return this.locate(this.ordered[0]);
    return this.lanes[0] && this.lanes[0].items.length ? { lane: 0, index: 0 } : null;
  }

  locate(row) {
    const lane = this.lanes.findIndex((l) => l.key === row.step) >= 0
      ? this.lanes.findIndex((l) => l.key === row.step)
      : this.lanes.findIndex((l) => l.key === "CONNECTION_STEP_UNSPECIFIED");
    return { lane, index: this.lanes[lane].items.indexOf(row) };
  }

  moveTo(focus, open = false) {
    if (!focus) {
      this.focusText.textContent = "No events in this interval.";
      return;
    }
    this.focus = focus;
    const item = this.focused();
    this.focusText.textContent = this.describe(item, true);
    this.canvas.dataset.focus = item.session ? item.session.sessionId : item.id;
    // where the focused item is drawn (CSS pixels of the canvas)
    this.canvas.dataset.focusX = String(Math.round(this.x(item.time)));
    this.canvas.dataset.focusY = String(Math.round(this.laneY(focus.lane)));
    this.draw();
    if (open) this.onOpen(item);
  }

  describe(item, position = false) {
    if (item.session) {
      const s = item.session;
      const aps = sessionLabel(s).join(" → ");
      return `Session ${formatTime(item.time)} to ${formatTime(item.endTime)}: ${
        (s.outcome || "").replace("SESSION_OUTCOME_", "").toLowerCase()}, access points ${aps || "unknown"}, ${
        s.roamCount || 0} roams`;
    }
    const at = position ? ` (${this.ordered.indexOf(item) + 1} of ${this.ordered.length})` : "";
    const parts = [`${formatTime(item.time)} ${item.stepLabel} ${outcomeLabel(item.kind)}${at}`];
    if (item.category) parts.push(`category ${item.category}`);
    if (item.specific) parts.push(`specific ${item.specific}`);
    if (item.ap) parts.push(`AP ${item.ap}`);
    for (const [name, ms] of [["DHCP", item.dhcpMs], ["AAA", item.aaaMs], ["DNS", item.dnsMs]]) {
      if (ms !== null) parts.push(`${name} ${formatMs(ms)}`);
    }
    return parts.join(", ");
  }

  key(e) {
    const focus = this.focus || this.firstFocus();
    if (!focus) return;
    const item = this.focused();
    let next = null;
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      const delta = e.key === "ArrowRight" ? 1 : -1;
      if (item && item.session) {
        const index = Math.min(Math.max(focus.index + delta, 0), this.lanes[0].items.length - 1);
        next = { lane: 0, index };
      } else if (this.ordered.length) {
        const at = item ? this.ordered.indexOf(item) : -1;
        const target = this.ordered[Math.min(Math.max(at + delta, 0), this.ordered.length - 1)];
        next = this.locate(target);
      }
    } else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      const delta = e.key === "ArrowDown" ? 1 : -1;
      const time = item ? item.time : this.start;
      for (let lane = focus.lane + delta; lane >= 0 && lane < this.lanes.length; lane += delta) {
        const index = nearest(this.lanes[lane].items, time);
        if (index >= 0) {
          next = { lane, index };
          break;
        }
      }
      if (!next) next = focus;
    } else if (e.key === "Home" || e.key === "End") {
      const target = e.key === "Home" ? this.ordered[0] : this.ordered[this.ordered.length - 1];
      if (target) next = this.locate(target);
    } else if (e.key === "Enter" || e.key === " ") {
      if (item) this.onOpen(item);
      e.preventDefault();
      return;
    } else if (e.key === "Escape") {
      this.onOpen(null);
      return;
    } else {
      return;
    }
    e.preventDefault();
    this.moveTo(next);
  }

  hit(e) {
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    const lane = Math.floor((y - AXIS) / LANE);
    if (lane < 0 || lane >= this.lanes.length || x < GUTTER - 8) return null;
    const items = this.lanes[lane].items;
    const time = this.time(x);
    if (lane === 0) {
      const index = items.findIndex((s) => this.x(s.time) - 4 <= x && x <= Math.max(this.x(s.time) + 3, this.x(s.endTime)) + 4);
      return index >= 0 ? { lane, index, x, y } : null;
    }
    const index = nearest(items, time);
    if (index < 0 || Math.abs(this.x(items[index].time) - x) > 8) return null;
    return { lane, index, x, y };
  }

  hover(e) {
    const found = this.hit(e);
    if (!found) {
      this.tooltip.hidden = true;
      return;
    }
    const item = this.lanes[found.lane].items[found.index];
    this.tooltip.textContent = this.describe(item);
    this.tooltip.hidden = false;
    this.tooltip.style.left = `${Math.min(found.x + 14, this.width - 280)}px`;
    this.tooltip.style.top = `${found.y + 14}px`;
  }

  click(e) {
    const found = this.hit(e);
    if (found) this.moveTo({ lane: found.lane, index: found.index }, true);
  }
}
