/* tass dashboard: the jobs page (filters, cursor pages, live refresh, pick jobs to compare). */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear } = T;
  const PAGE_SIZE = 25;

  const form = document.getElementById("filters");
  const tbody = document.getElementById("jobs-body");
  const empty = document.getElementById("jobs-empty");
  const compareBtn = document.getElementById("compare");
  const compareHint = document.getElementById("compare-hint");
  const newerBtn = document.getElementById("page-newer");
  const olderBtn = document.getElementById("page-older");
  const pageLabel = document.getElementById("page-label");
  const refreshState = document.getElementById("refresh-state");

  const params = new URLSearchParams(location.search);
  const filters = {
    status: params.get("status") || "",
    type: params.get("type") || "",
    tag: params.get("tag") || "",
  };
  form.elements.status.value = filters.status;
  form.elements.type.value = filters.type;
  form.elements.tag.value = filters.tag;

  let cursors = [null]; // cursors[i] opens page i
  let nextCursor = null;
  let jobs = [];
  const selected = new Map(); // id -> label, kept across pages
  const best = new Map(); // id -> {epoch, value} from the epoch metrics

  function tagFilter() {
    const i = filters.tag.indexOf("=");
    return i > 0 ? [filters.tag.slice(0, i), filters.tag.slice(i + 1)] : null;
  }

  async function load() {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    if (filters.status) q.set("status", filters.status);
    if (filters.type) q.set("type", filters.type);
    if (filters.tag) q.set("tag", filters.tag);
    const page = await T.api(`/v1/jobs?${q}`);
    const tag = tagFilter();
    jobs = tag ? page.items.filter((j) => (j.tags || {})[tag[0]] === tag[1]) : page.items;
    nextCursor = page.next_cursor;
    T.hideNotice();
    render();
    T.setUpdated(refreshState);
    await refreshBest();
  }

  /** Best validation accuracy per training job; final jobs are fetched once. */
  async function refreshBest() {
    const due = jobs.filter((job) => {
      if (job.type !== "train" || job.status === "queued") return false;
      const known = best.get(job.id);
      const epoch = job.progress ? job.progress.epoch : null;
      return !known || (!known.final && known.epoch !== epoch) || (T.FINAL.has(job.status) && !known.final);
    });
    for (let i = 0; i < due.length; i += 4) {
      await Promise.all(
        due.slice(i, i + 4).map(async (job) => {
          const rows = await T.metricRows(job.id, "epoch");
          const top = T.bestOf(rows, "val_accuracy");
          best.set(job.id, {
            value: top ? top.value : null,
            at: top ? top.step : null,
            epoch: job.progress ? job.progress.epoch : null,
            final: T.FINAL.has(job.status),
          });
          const cell = document.querySelector(`[data-best-for="${CSS.escape(job.id)}"]`);
          if (cell) fillBest(cell, job);
        })
      );
    }
  }

  function fillBest(cell, job) {
    clear(cell);
    if (job.type === "evaluate") {
      const acc = job.result ? job.result.accuracy : undefined;
      if (typeof acc === "number") {
        cell.append(el("span", { title: "evaluation accuracy", text: `${T.fmtPct(acc)} (eval)` }));
      } else cell.append("—");
      return;
    }
    const known = best.get(job.id);
    if (known && known.value !== null) {
      cell.append(
        el("span", { title: `best at epoch ${known.at}`, text: T.fmtPct(known.value) })
      );
    } else cell.append("—");
  }

  function epochCell(job) {
    const p = job.progress;
    const total = (p && p.epochs) || (job.spec && job.spec.epochs) || null;
    if (job.type !== "train") return el("td", null, "—");
    const epoch = p && p.epoch ? p.epoch : job.status === "queued" ? 0 : null;
    const label = `${epoch === null ? "—" : epoch} / ${total === null ? "?" : total}`;
    const fraction = T.progressFraction(p, job.status);
    // an unknown fraction is a busy (animated) bar only while the job runs; a queued job, or
    // one that ended (failed, cancelled) before its first progress report, shows an empty bar
    const running = T.ACTIVE.has(job.status) && job.status !== "queued";
    return el(
      "td",
      { class: "epoch" },
      el("span", { class: "epoch-label", text: label }),
      T.progressBar(fraction === null && !running ? 0 : fraction, `${T.jobLabel(job)} progress`)
    );
  }

  function row(job) {
    const label = T.jobLabel(job);
    const check =
      job.type === "train"
        ? el("input", {
            type: "checkbox",
            class: "pick",
            "aria-label": `Select ${label} for comparison`,
            "data-focus": `pick:${job.id}`,
            "data-job-id": job.id,
            checked: selected.has(job.id),
            onchange: (event) => {
              if (event.target.checked) selected.set(job.id, label);
              else selected.delete(job.id);
              updateCompare();
            },
          })
        : null;
    const tags = Object.entries(job.tags || {});
    const nameCell = el(
      "td",
      { class: "name" },
      el("a", { href: T.jobHref(job.id), "data-focus": `link:${job.id}`, text: label }),
      job.name ? el("span", { class: "id muted", text: T.shortId(job.id) }) : null,
      tags.length
        ? el(
            "ul",
            { class: "tags", "aria-label": "tags" },
            tags.map(([k, v]) => el("li", { text: `${k}=${v}` }))
          )
        : null
    );
    const bestCell = el("td", { class: "num", "data-best-for": job.id });
    fillBest(bestCell, job);
    const eta =
      T.ACTIVE.has(job.status) && job.progress && job.progress.eta_seconds !== null
        ? T.fmtDuration(job.progress.eta_seconds)
        : "—";
    return el(
      "tr",
      { "data-job-id": job.id, "data-status": job.status },
      el("td", null, check),
      nameCell,
      el("td", { text: job.type }),
      el("td", null, T.statusBadge(job.status)),
      el(
        "td",
        null,
        job.model_id ? el("code", { title: job.model_id, text: T.shortId(job.model_id) }) : "—"
      ),
      epochCell(job),
      bestCell,
      el("td", null, T.timeEl(job.started_at)),
      el("td", { class: "num", text: T.fmtDuration(T.jobDuration(job)) }),
      el("td", { class: "num", text: eta })
    );
  }

  function render() {
    // Re-rendering keeps keyboard focus on the same control.
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.focus
      : null;
    clear(tbody);
    for (const job of jobs) tbody.append(row(job));
    empty.hidden = jobs.length > 0;
    if (focused) {
      const again = tbody.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    newerBtn.disabled = cursors.length <= 1;
    olderBtn.disabled = !nextCursor;
    pageLabel.textContent = `Page ${cursors.length}`;
    updateCompare();
  }

  function updateCompare() {
    const n = selected.size;
    compareBtn.disabled = n < 2 || n > 5;
    compareHint.textContent =
      n === 0
        ? "Select 2–5 training jobs to compare."
        : n > 5
          ? `${n} selected: at most 5 can be compared.`
          : `${n} selected${n < 2 ? ": select at least 2." : "."}`;
  }

  compareBtn.addEventListener("click", () => {
    const ids = [...selected.keys()].join(",");
    location.href = `${T.BASE}/compare?ids=${encodeURIComponent(ids)}`;
  });

  function applyFilters() {
    filters.status = form.elements.status.value;
    filters.type = form.elements.type.value;
    filters.tag = form.elements.tag.value.trim();
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    history.replaceState(null, "", q.toString() ? `?${q}` : location.pathname);
    cursors = [null];
    poller.now();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters();
  });
  document.getElementById("f-clear").addEventListener("click", () => {
    form.reset();
    applyFilters();
  });
  olderBtn.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors.push(nextCursor);
    poller.now();
  });
  newerBtn.addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    poller.now();
  });

  const poller = T.poll(
    () =>
      load().catch((err) => {
        if (err.status !== 401) T.showNotice(`Could not load jobs: ${err.message}`);
        throw err;
      }),
    // fast while something on the page runs; slower otherwise (new jobs still show up)
    () => (jobs.some((j) => T.ACTIVE.has(j.status)) ? 3000 : 15000)
  );
})();
