// The Grid: the same events as a table, sortable by every column, filtered
// by text, step and outcome, virtualised (only the rows in view are in the
// DOM, so tens of thousands stay fast), exported as CSV.

import { COLUMNS } from "./model.js";

const ROW = 30;
const OVERSCAN = 10;

export class Grid {
  constructor({ scroll, head, body, count, onOpen, onSort }) {
    this.scroll = scroll;
    this.head = head;
    this.body = body;
    this.count = count;
    this.onOpen = onOpen;
    this.onSort = onSort;
    this.rows = [];
    this.shown = [];
    this.sort = { key: "time", dir: "asc" };
    this.filter = { text: "", step: "", outcome: "" };
    this.first = -1;
    this.last = -1;
    this.buildHead();
    scroll.addEventListener("scroll", () => this.paint());
    new ResizeObserver(() => this.paint(true)).observe(scroll);
    body.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-index]");
      if (button) this.onOpen(this.shown[Number(button.dataset.index)], button);
    });
  }

  buildHead() {
    this.head.replaceChildren(...COLUMNS.map(([key, title]) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.dataset.key = key;
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = title;
      button.addEventListener("click", () => {
        const dir = this.sort.key === key && this.sort.dir === "asc" ? "desc" : "asc";
        this.setSort(key, dir);
        this.onSort(`${key}:${dir}`);
      });
      th.append(button);
      return th;
    }));
    this.markSort();
  }

  markSort() {
    for (const th of this.head.children) {
      const on = th.dataset.key === this.sort.key;
      th.setAttribute("aria-sort", on ? (this.sort.dir === "asc" ? "ascending" : "descending") : "none");
      th.firstChild.dataset.dir = on ? this.sort.dir : "";
    }
  }

  setRows(rows) {
    this.rows = rows;
    this.refresh();
  }

  setSort(key, dir) {
    if (!COLUMNS.some(([k]) => k === key)) key = "time";
    this.sort = { key, dir: dir === "desc" ? "desc" : "asc" };
    this.markSort();
    this.refresh();
  }

  setFilter(filter) {
    this.filter = { ...this.filter, ...filter };
    this.refresh();
  }

  refresh() {
    const text = this.filter.text.trim().toLowerCase();
    const shown = this.rows.filter((r) => (!text || r.text.includes(text))
      && (!this.filter.step || r.step === this.filter.step) && (!this.filter.outcome || r.kind === this.filter.outcome));
    const [key, , value, numeric] = COLUMNS.find(([k]) => k === this.sort.key);
    const sign = this.sort.dir === "desc" ? -1 : 1;
    const keyed = shown.map((row) => ({ row, v: key === "time" ? row.time : value(row) }));
    keyed.sort((a, b) => {
      let c;
      if (numeric) {
        const an = a.v === "" ? Number.NEGATIVE_INFINITY : Number(a.v);
        const bn = b.v === "" ? Number.NEGATIVE_INFINITY : Number(b.v);
        c = an - bn;
      } else {
        c = String(a.v).localeCompare(String(b.v));
      }
      return c * sign || (a.row.time - b.row.time) * sign;
    });
    this.shown = keyed.map((k) => k.row);
    this.count.textContent = `${this.shown.length} of ${this.rows.length} events`;
    this.scroll.dataset.rows = String(this.shown.length);
    this.body.closest("table").setAttribute("aria-rowcount", String(this.shown.length + 1));
    this.paint(true);
  }

  paint(force = false) {
    const top = this.scroll.scrollTop;
    const height = this.scroll.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(this.shown.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const rows = [];
    rows.push(this.spacer(first * ROW));
    for (let i = first; i < last; i += 1) rows.push(this.row(this.shown[i], i));
    rows.push(this.spacer((this.shown.length - last) * ROW));
    this.body.replaceChildren(...rows);
  }

  spacer(height) {
    const tr = document.createElement("tr");
    tr.className = "spacer";
    tr.setAttribute("aria-hidden", "true");
    const td = document.createElement("td");
    td.colSpan = COLUMNS.length;
    td.style.height = `${height}px`;
    tr.append(td);
    return tr;
  }

  row(row, index) {
    const tr = document.createElement("tr");
    tr.className = `row ${row.kind}`;
    tr.setAttribute("aria-rowindex", String(index + 2));
    row.cells.forEach((text, c) => {
      const td = document.createElement("td");
      if (c === 0) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        button.dataset.index = String(index);
        button.textContent = text;
        button.setAttribute("aria-label", `${text}: show every field`);
        td.append(button);
      } else if (c === 2) {
        const mark = document.createElement("span");
        mark.className = `mark ${row.kind}`;
        mark.setAttribute("aria-hidden", "true");
        td.append(mark, text);
      } else {
        td.textContent = text;
      }
      tr.append(td);
    });
    return tr;
  }
}
