/* tass dashboard: shared helpers (no framework, no build step).
 * Every user-provided string reaches the page through textContent / attributes, never
 * through innerHTML. */
"use strict";

(function () {
  const body = document.body;
  const ROOT = body.dataset.root || "";
  const BASE = body.dataset.base || "/dashboard";
  const FINAL = new Set(["succeeded", "failed", "cancelled"]);
  const ACTIVE = new Set(["queued", "running", "cancelling"]);
  const SVG_NS = "http://www.w3.org/2000/svg";

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function detailText(detail) {
    if (!detail) return "";
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map(fieldMessage).join("; ");
    return JSON.stringify(detail);
  }

  /** One 422 entry, led by the field it names ("spec.learning_rate: Input should be…"). */
  function fieldMessage(d) {
    const msg = d.msg || JSON.stringify(d);
    const where = Array.isArray(d.loc) ? d.loc.filter((p, i) => i > 0 || p !== "body").join(".") : "";
    const field = where.split(".").pop();
    return where && !msg.startsWith(`${field}:`) ? `${where}: ${msg}` : msg;
  }

  /** JSON from the /v1 API with the session cookie; 401 shows a "log in again" notice. */
  async function api(path, options) {
    const init = Object.assign(
      { credentials: "same-origin", headers: { Accept: "application/json" } },
      options || {}
    );
    let res;
    try {
      res = await fetch(ROOT + path, init);
    } catch (err) {
      throw new ApiError(0, "The server cannot be reached.");
    }
    if (res.status === 401) {
      sessionExpired();
      throw new ApiError(401, "Your session has ended.");
    }
    if (!res.ok) {
      let detail = "";
      try {
        detail = detailText((await res.json()).detail);
      } catch (err) {
        detail = res.statusText;
      }
      throw new ApiError(res.status, detail || `HTTP ${res.status}`);
    }
    if (res.status === 204) return null;
    return res.json();
  }

  /** Every page of a metric series (`kind` epoch|step), following next_cursor. */
  async function metricRows(jobId, kind, after, maxRows) {
    const rows = [];
    let cursor = after === undefined || after === null ? null : after;
    const cap = maxRows || 20000;
    for (;;) {
      const q = new URLSearchParams({ kind, limit: "5000" });
      if (cursor !== null) q.set("cursor", String(cursor));
      const page = await api(`/v1/jobs/${encodeURIComponent(jobId)}/metrics?${q}`);
      rows.push(...page.items);
      if (!page.next_cursor || rows.length >= cap) break;
      cursor = page.next_cursor;
    }
    return rows;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.setAttribute("class", value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  // A <thead> row of column headers; the labels in `numeric` head right-aligned columns.
  function tableHead(labels, numeric = []) {
    const cell = (label) => el("th", { scope: "col", class: numeric.includes(label) ? "num" : null, text: label });
    return el("thead", null, el("tr", null, labels.map(cell)));
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function showNotice(message, link) {
    const box = document.getElementById("notice");
    if (!box) return;
    clear(box);
    box.append(document.createTextNode(message + " "));
    if (link) box.append(el("a", { href: link.href, text: link.text }));
    box.hidden = false;
  }

  function hideNotice() {
    const box = document.getElementById("notice");
    if (box) box.hidden = true;
  }

  function sessionExpired() {
    const next = location.pathname + location.search;
    showNotice("You are not logged in (or the key was revoked).", {
      href: `${BASE}/login?next=${encodeURIComponent(next)}`,
      text: "Log in again",
    });
  }

  function statusBadge(status) {
    return el("span", { class: `status status-${status}`, text: status });
  }

  function shortId(id) {
    return id ? String(id).slice(0, 8) : "";
  }

  function jobLabel(job) {
    return job.name || `job ${shortId(job.id)}`;
  }

  function jobHref(id) {
    return `${BASE}/jobs/${encodeURIComponent(id)}`;
  }

  function parseTime(iso) {
    if (!iso) return null;
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : t;
  }

  function fmtTime(iso) {
    const t = parseTime(iso);
    if (t === null) return "—";
    return new Date(t).toLocaleString(undefined, {
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
  }

  function timeEl(iso, relative) {
    const t = parseTime(iso);
    if (t === null) return document.createTextNode("—");
    const text = relative ? fmtAgo(iso) : fmtTime(iso);
    return el("time", { datetime: new Date(t).toISOString(), title: fmtTime(iso), text });
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
    let s = Math.max(0, Math.round(seconds));
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
    return `${s}s`;
  }

  function fmtAgo(iso) {
    const t = parseTime(iso);
    if (t === null) return "—";
    const s = (Date.now() - t) / 1000;
    if (s < 0) return "just now";
    return `${fmtDuration(s)} ago`;
  }

  function jobDuration(job) {
    const start = parseTime(job.started_at);
    if (start === null) return null;
    const end = parseTime(job.finished_at);
    return ((end === null ? Date.now() : end) - start) / 1000;
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
  }

  function fmtPct(x, digits) {
    if (x === null || x === undefined || !Number.isFinite(x)) return "—";
    return `${(x * 100).toFixed(digits === undefined ? 1 : digits)}%`;
  }

  function fmtNum(x) {
    if (x === null || x === undefined) return "—";
    if (typeof x !== "number") return String(x);
    if (!Number.isFinite(x)) return String(x);
    if (Number.isInteger(x)) return String(x);
    const abs = Math.abs(x);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return x.toExponential(3);
    return String(Number(x.toPrecision(4)));
  }

  function fmtValue(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "number") return fmtNum(value);
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }

  /** {a: {b: 1}, c: [1, 2]} -> {"a.b": 1, "c": [1, 2]} */
  function flatten(obj, prefix, out) {
    const result = out || {};
    for (const [key, value] of Object.entries(obj || {})) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (value && typeof value === "object" && !Array.isArray(value)) {
        if (Object.keys(value).length === 0) result[name] = value;
        else flatten(value, name, result);
      } else result[name] = value;
    }
    return result;
  }

  /** Epoch 3 of 10 at step 40/100 -> 0.24. */
  function progressFraction(progress, status) {
    if (status === "succeeded") return 1;
    if (!progress || !progress.epochs) return null;
    const epoch = progress.epoch || 0;
    const within = progress.steps_per_epoch ? (progress.step || 0) / progress.steps_per_epoch : 0;
    return Math.min(1, Math.max(0, (epoch - 1 + within) / progress.epochs));
  }

  // a job's progress.phase as the page says it (the CLI uses the same words)
  const PHASE_LABELS = {
    loading: "loading data",
    compiling: "compiling",
    training: "training",
    evaluating: "evaluating",
    exporting: "exporting model",
  };

  function phaseLabel(phase) {
    return PHASE_LABELS[phase] || String(phase);
  }

  function progressBar(fraction, label) {
    const bar = el("progress", { max: "1", "aria-label": label });
    if (fraction !== null) bar.value = fraction;
    return bar;
  }

  function bestOf(rows, name) {
    let best = null;
    for (const row of rows) {
      const v = row.values ? row.values[name] : undefined;
      if (typeof v === "number" && Number.isFinite(v) && (best === null || v > best.value)) {
        best = { value: v, step: row.step };
      }
    }
    return best;
  }

  /** Runs `fn` now and then every `delay()` ms after it finishes; pauses in hidden tabs. */
  function poll(fn, delay) {
    let timer = null;
    let stopped = false;
    async function tick() {
      timer = null;
      if (stopped) return;
      if (document.hidden) return;
      try {
        await fn();
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) console.error(err);
      }
      if (!stopped) timer = setTimeout(tick, delay());
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer === null && !stopped) tick();
    });
    tick();
    return {
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
      now() {
        if (timer) clearTimeout(timer);
        tick();
      },
    };
  }

  function setUpdated(node) {
    if (!node) return;
    node.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  window.Tass = {
    ROOT,
    BASE,
    FINAL,
    ACTIVE,
    ApiError,
    api,
    metricRows,
    el,
    svg,
    tableHead,
    clear,
    showNotice,
    hideNotice,
    statusBadge,
    shortId,
    jobLabel,
    jobHref,
    fmtTime,
    timeEl,
    fmtDuration,
    fmtAgo,
    jobDuration,
    fmtBytes,
    fmtPct,
    fmtNum,
    fmtValue,
    flatten,
    progressFraction,
    progressBar,
    phaseLabel,
    bestOf,
    poll,
    setUpdated,
  };
})();
