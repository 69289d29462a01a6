/* tass dashboard: one job — summary, live learning curves (SSE), evaluation, artifacts. */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear } = T;
  const jobId = document.body.dataset.jobId;
  const jobPath = `/v1/jobs/${encodeURIComponent(jobId)}`;

  const $ = (id) => document.getElementById(id);
  let job = null;
  const epochs = new Map(); // epoch -> values
  let steps = []; // [{step, values}]
  let lastStepFetch = 0;
  let stepFetching = false;
  let events = null;
  let fallbackPoll = null;

  async function loadJob() {
    job = await T.api(jobPath);
    renderJob();
    return job;
  }

  function renderJob() {
    document.title = `${T.jobLabel(job)} · tass`;
    // a named job: its name and short id; an unnamed one: "Untitled job" and its whole id
    // (DOM append() writes null as the text "null": only nodes and strings go in)
    const heading = job.name
      ? [job.name, " ", el("code", { class: "id muted", text: T.shortId(job.id) })]
      : ["Untitled job ", el("code", { text: job.id })];
    clear($("job-title")).append(...heading);
    clear($("job-status")).append(T.statusBadge(job.status));
    $("cancel").hidden = !(job.status === "queued" || job.status === "running");
    $("rerun").hidden = job.type !== "train"; // the submit form trains
    $("job-loading").hidden = true;
    $("job-content").hidden = false;
    renderSummary();
    renderProgress();
    renderTimeline();
    renderError();
    renderHyperparameters();
    if (job.type === "evaluate") renderEvaluation();
    $("curves-section").hidden = job.type !== "train";
  }

  function dlRow(dl, term, ...value) {
    dl.append(el("dt", { text: term }), el("dd", null, ...value));
  }

  function renderSummary() {
    const dl = clear($("summary"));
    dlRow(dl, "Id", el("code", { text: job.id }));
    dlRow(dl, "Type", job.type);
    dlRow(dl, "Status", T.statusBadge(job.status));
    dlRow(dl, "Attempt", String(job.attempt));
    dlRow(dl, "Created", T.timeEl(job.created_at));
    dlRow(dl, "Started", T.timeEl(job.started_at));
    dlRow(dl, "Finished", T.timeEl(job.finished_at));
    dlRow(dl, "Duration", T.fmtDuration(T.jobDuration(job)));
    if (job.worker) dlRow(dl, "Worker", el("code", { text: job.worker }));
    if (job.last_heartbeat_at) dlRow(dl, "Last heartbeat", T.timeEl(job.last_heartbeat_at, true));
    const dataset = Object.entries(T.flatten(job.dataset || {}))
      .map(([k, v]) => `${k}: ${T.fmtValue(v)}`)
      .join(", ");
    dlRow(dl, "Dataset", dataset || "—");
    const tags = Object.entries(job.tags || {});
    dlRow(
      dl,
      "Tags",
      tags.length
        ? el("ul", { class: "tags" }, tags.map(([k, v]) => el("li", { text: `${k}=${v}` })))
        : "—"
    );
    if (job.model_id) {
      const dd = el("span", null, el("code", { text: job.model_id }));
      dlRow(dl, job.type === "train" ? "Model" : "Evaluated model", dd);
      if (job.type === "evaluate") {
        T.api(`/v1/models/${encodeURIComponent(job.model_id)}`)
          .then((model) => {
            dd.append(" — trained by ", el("a", { href: T.jobHref(model.job_id), text: model.name || `job ${T.shortId(model.job_id)}` }));
          })
          .catch(() => {});
      }
    }
    const metrics = Object.entries(job.metrics || {});
    if (metrics.length && job.type === "train") {
      dlRow(
        dl,
        "Latest metrics",
        metrics.map(([k, v]) => `${k} ${T.fmtNum(v)}`).join(", ")
      );
    }
  }

  function renderProgress() {
    const box = clear($("progress-box"));
    const p = job.progress;
    if (!p || !T.ACTIVE.has(job.status)) return;
    // what the job is doing now: loading data, compiling, training, evaluating, exporting
    // (a requeued job keeps its last attempt's progress, but is doing nothing yet)
    const phase = p.phase && job.status !== "queued"
      ? el("span", { id: "job-phase", class: `phase phase-${p.phase}`, text: T.phaseLabel(p.phase) })
      : null;
    if (job.type !== "train") {
      if (phase) box.append(el("div", { class: "progress-line" }, phase, T.progressBar(null, "Evaluation progress")));
      return;
    }
    const fraction = T.progressFraction(p, job.status);
    // the ETA counts training steps: it says nothing while loading, compiling or after training
    const training = !p.phase || p.phase === "training";
    box.append(
      el(
        "div",
        { class: "progress-line" },
        phase,
        // before the first step reports (loading, compiling) the spec says how many epochs
        el("strong", { text: `Epoch ${p.epoch || "—"} / ${p.epochs || (job.spec && job.spec.epochs) || "?"}` }),
        T.progressBar(fraction, "Training progress"),
        el("span", {
          text: [
            p.steps_per_epoch ? `step ${p.step}/${p.steps_per_epoch}` : null,
            training && p.images_per_sec ? `${Math.round(p.images_per_sec)} img/s` : null,
            training && p.eta_seconds !== null && p.eta_seconds !== undefined
              ? `ETA ${T.fmtDuration(p.eta_seconds)}`
              : null,
          ]
            .filter(Boolean)
            .join(" · "),
        })
      )
    );
  }

  function renderTimeline() {
    const list = clear($("timeline"));
    let previous = null;
    for (const t of job.transitions || []) {
      const at = Date.parse(t.at);
      const details = [`attempt ${t.attempt}`];
      if (t.reason) details.push(t.reason);
      if (t.resumed_from_epoch !== null && t.resumed_from_epoch !== undefined) {
        details.push(`resumed from epoch ${t.resumed_from_epoch}`);
      }
      if (previous !== null) details.push(`+${T.fmtDuration((at - previous) / 1000)}`);
      previous = at;
      list.append(
        el(
          "li",
          { "data-status": t.status },
          T.timeEl(t.at),
          " ",
          T.statusBadge(t.status),
          " ",
          el("span", { class: "muted", text: details.join(" · ") })
        )
      );
    }
  }

  function renderError() {
    $("error-section").hidden = !job.error;
    $("error-text").textContent = job.error || "";
  }

  function renderHyperparameters() {
    const flat = T.flatten(job.spec || {});
    const keys = Object.keys(flat).sort();
    $("hp-section").hidden = keys.length === 0;
    const box = clear($("hp-table"));
    // a long list reads better in two columns on a laptop screen
    const half = keys.length > 10 ? Math.ceil(keys.length / 2) : keys.length;
    for (const part of [keys.slice(0, half), keys.slice(half)]) {
      if (!part.length) continue;
      const tbody = el("tbody");
      for (const key of part) {
        tbody.append(
          el("tr", null, el("th", { scope: "row", text: key }), el("td", { text: T.fmtValue(flat[key]) }))
        );
      }
      box.append(
        el(
          "table",
          { class: "data kv" },
          T.tableHead(["Parameter", "Value"]),
          tbody
        )
      );
    }
  }

  // ---- learning curves ------------------------------------------------------------------

  function epochSeries(name) {
    return [...epochs.entries()]
      .sort((a, b) => a[0] - b[0])
      .filter(([, v]) => typeof v[name] === "number")
      .map(([x, v]) => ({ x, y: v[name] }));
  }

  /** A finished job that recorded no metric: say so (and why) instead of blank axes. */
  function showNoMetrics() {
    const none = T.FINAL.has(job.status) && epochs.size === 0 && steps.length === 0;
    $("curves-charts").hidden = none;
    $("curves-empty").hidden = !none;
    $("curves-empty").textContent = none
      ? job.status === "failed"
        ? "No metrics recorded: the job failed before its first epoch ended (see the error above)."
        : `No metrics recorded: the job was ${job.status} before its first epoch ended.`
      : "";
    return none;
  }

  function drawCurves() {
    if (!job || job.type !== "train" || showNoMetrics()) return;
    const total = (job.progress && job.progress.epochs) || (job.spec && job.spec.epochs) || undefined;
    const common = { xLabel: "epoch", xMin: 1, xMax: total, xInteger: true };
    T.lineChart($("chart-loss"), {
      ...common,
      title: "Loss per epoch",
      yLabel: "loss",
      series: [
        { name: "train loss", points: epochSeries("loss") },
        { name: "validation loss", points: epochSeries("val_loss"), dash: "6 4" },
      ],
    });
    T.lineChart($("chart-accuracy"), {
      ...common,
      title: "Accuracy per epoch",
      yLabel: "accuracy",
      yFormat: (v) => T.fmtPct(v, 0),
      series: [
        { name: "train accuracy", points: epochSeries("accuracy") },
        { name: "validation accuracy", points: epochSeries("val_accuracy"), dash: "6 4" },
      ],
    });
    T.lineChart($("chart-steps"), {
      title: "Training loss per step",
      xLabel: "step",
      yLabel: "loss",
      xMin: 0,
      empty: "No step metrics yet",
      series: [
        {
          name: "step loss",
          markers: false,
          points: steps
            .filter((r) => typeof r.values.loss === "number")
            .map((r) => ({ x: r.step, y: r.values.loss })),
        },
      ],
    });
  }

  async function loadEpochs() {
    for (const row of await T.metricRows(jobId, "epoch")) epochs.set(row.step, row.values);
  }

  async function loadSteps() {
    if (stepFetching) return;
    stepFetching = true;
    lastStepFetch = Date.now();
    try {
      const after = steps.length ? steps[steps.length - 1].step : null;
      const rows = await T.metricRows(jobId, "step", after);
      if (rows.length) steps = steps.concat(rows);
    } finally {
      stepFetching = false;
    }
  }

  function liveState(text) {
    $("live-state").textContent = text;
  }

  function follow() {
    if (!window.EventSource) {
      startFallbackPoll();
      return;
    }
    events = new EventSource(`${T.ROOT}${jobPath}/events`, { withCredentials: true });
    events.addEventListener("open", () => liveState("● live"));
    events.addEventListener("metrics", (event) => {
      const data = JSON.parse(event.data);
      if (data.kind === "epoch") {
        epochs.set(data.step, data.values);
        drawCurves();
      }
    });
    events.addEventListener("progress", (event) => {
      job.progress = JSON.parse(event.data);
      renderProgress();
      if (Date.now() - lastStepFetch > 3000) loadSteps().then(drawCurves).catch(() => {});
    });
    events.addEventListener("status", async (event) => {
      const data = JSON.parse(event.data);
      const changed = data.status !== job.status;
      if (T.FINAL.has(data.status)) {
        events.close();
        events = null;
        liveState("");
      }
      if (changed || T.FINAL.has(data.status)) await refreshAll();
    });
    events.addEventListener("error", () => {
      if (events && events.readyState === EventSource.CLOSED) {
        events = null;
        startFallbackPoll();
      } else liveState("reconnecting…");
    });
  }

  /** Without a stream (refused, or no EventSource): poll the job every few seconds. */
  function startFallbackPoll() {
    if (fallbackPoll) return;
    liveState("polling");
    fallbackPoll = T.poll(
      async () => {
        await refreshAll();
        if (T.FINAL.has(job.status)) {
          fallbackPoll.stop();
          liveState("");
        }
      },
      () => 5000
    );
  }

  async function refreshAll() {
    await loadJob();
    if (job.type === "train") {
      await Promise.all([loadEpochs(), loadSteps()]);
      drawCurves();
    }
    await loadArtifacts();
  }

  // ---- evaluation ------------------------------------------------------------------------

  function renderEvaluation() {
    const r = job.result;
    $("eval-section").hidden = !r;
    if (!r) return;
    const names = r.class_names || (r.confusion_matrix || []).map((_, i) => String(i));
    const head = clear($("eval-head"));
    const stat = (label, value) =>
      el("div", { class: "stat" }, el("span", { class: "stat-label", text: label }), el("span", { class: "stat-value", text: value }));
    head.append(
      stat("Accuracy", T.fmtPct(r.accuracy, 2)),
      stat("Loss", T.fmtNum(r.loss)),
      stat("Examples", r.num_examples !== undefined ? r.num_examples.toLocaleString() : "—"),
      stat("Classes", String(names.length))
    );

    // per-class accuracy: a list or a {class: accuracy} mapping
    let perClass = r.per_class_accuracy || [];
    if (!Array.isArray(perClass)) perClass = names.map((n) => perClass[n]);
    const bars = el("table", { class: "bars", id: "per-class-table" });
    bars.append(
      el("caption", { class: "visually-hidden", text: "Accuracy per class" }),
      T.tableHead(["Class", "Accuracy", "%"], ["%"])
    );
    const tb = el("tbody");
    names.forEach((name, i) => {
      const acc = perClass[i];
      const fill = el("div", { class: "bar-fill" });
      fill.style.width = `${Math.max(0, Math.min(1, acc || 0)) * 100}%`;
      tb.append(
        el(
          "tr",
          { class: "bar-row" },
          el("th", { scope: "row", text: name }),
          el("td", { class: "bar-cell" }, el("div", { class: "bar", "aria-hidden": "true" }, fill)),
          el("td", { class: "num", text: T.fmtPct(acc) })
        )
      );
    });
    bars.append(tb);
    clear($("per-class")).append(bars);

    // confusion matrix heatmap: rows = true class, columns = predicted
    const cm = r.confusion_matrix || [];
    const table = el("table", { class: "cm", id: "cm-table", "aria-labelledby": "cm-title" });
    const headRow = el("tr", null, el("th", { scope: "col", class: "corner" }, el("span", { text: "true \u2193 / predicted \u2192" })));
    for (const name of names) headRow.append(el("th", { scope: "col", class: "cm-col" }, el("span", { text: name })));
    table.append(el("thead", null, headRow));
    const body = el("tbody");
    cm.forEach((rowValues, i) => {
      const total = rowValues.reduce((a, b) => a + b, 0) || 1;
      const tr = el("tr", null, el("th", { scope: "row", text: names[i] }));
      rowValues.forEach((count, j) => {
        const share = count / total;
        const td = el("td", {
          class: `cm-cell${i === j ? " diag" : ""}`,
          title: `true ${names[i]} → predicted ${names[j]}: ${count} (${T.fmtPct(share)})`,
          "data-count": count,
          text: String(count),
        });
        td.style.backgroundColor = `rgba(0, 90, 160, ${(0.04 + 0.96 * Math.sqrt(share)).toFixed(3)})`;
        if (Math.sqrt(share) > 0.5) td.classList.add("dark");
        tr.append(td);
      });
      body.append(tr);
    });
    table.append(body);
    clear($("confusion")).append(table);
  }

  // ---- artifacts -------------------------------------------------------------------------

  function downloadFormat(kind) {
    if (kind === "model-keras") return "keras";
    if (kind === "model-savedmodel") return "savedmodel";
    return null;
  }

  async function loadArtifacts() {
    const box = $("artifacts");
    let items;
    try {
      items = await T.api(`${jobPath}/artifacts`);
    } catch (err) {
      if (err.status !== 404 || !job.model_id || job.type !== "train") {
        clear(box).append(el("p", { class: "muted", text: `Artifacts unavailable: ${err.message}` }));
        return;
      }
      // an older server without /artifacts: the model's files only
      const model = await T.api(`/v1/models/${encodeURIComponent(job.model_id)}`);
      items = model.artifacts.map((a) => ({
        ...a,
        kind: `model-${a.format}`,
        epoch: null,
        created_at: model.created_at,
        model_id: model.id,
      }));
    }
    clear(box);
    if (!items.length) {
      box.append(el("p", { class: "muted", text: "No stored files." }));
      return;
    }
    const table = el("table", { class: "data artifacts", id: "artifacts-table" });
    table.append(T.tableHead(["Kind", "Epoch", "Size", "SHA-256", "Created", "Download"], ["Size"]));
    const tbody = el("tbody");
    for (const a of items) {
      const format = downloadFormat(a.kind);
      const modelId = a.model_id || (job.type === "train" ? job.model_id : null);
      const canDownload = format && modelId;
      tbody.append(
        el(
          "tr",
          { "data-kind": a.kind },
          el("td", { text: a.kind }),
          el("td", { text: a.epoch === null || a.epoch === undefined ? "—" : String(a.epoch) }),
          el("td", { class: "num", title: `${a.size} bytes`, text: T.fmtBytes(a.size) }),
          el("td", null, el("code", { class: "sha", text: a.sha256 })),
          el("td", null, T.timeEl(a.created_at)),
          el(
            "td",
            null,
            canDownload
              ? el("a", {
                  href: `${T.ROOT}/v1/models/${encodeURIComponent(modelId)}/download?format=${format}`,
                  download: "",
                  class: "download",
                  text: `Download ${format}`,
                })
              : "—"
          )
        )
      );
    }
    table.append(tbody);
    box.append(el("div", { class: "table-wrap" }, table));
  }

  // ---- cancel ----------------------------------------------------------------------------

  $("cancel").addEventListener("click", async () => {
    const button = $("cancel");
    if (!window.confirm(`Cancel ${T.jobLabel(job)}?`)) return;
    button.disabled = true;
    try {
      job = await T.api(`${jobPath}/cancel`, { method: "POST" });
      T.hideNotice();
      renderJob();
      if (T.FINAL.has(job.status)) await loadArtifacts();
    } catch (err) {
      if (err.status !== 401) T.showNotice(`Could not cancel: ${err.message}`);
      await loadJob().catch(() => {});
    } finally {
      button.disabled = false;
    }
  });

  // ---- start -----------------------------------------------------------------------------

  (async () => {
    try {
      await loadJob();
    } catch (err) {
      $("job-loading").textContent =
        err.status === 404 ? "There is no such job (or it belongs to another tenant)." : `Could not load the job: ${err.message}`;
      return;
    }
    try {
      if (job.type === "train") {
        await Promise.all([loadEpochs(), loadSteps()]);
        drawCurves();
      }
      await loadArtifacts();
    } catch (err) {
      if (err.status !== 401) T.showNotice(`Could not load everything: ${err.message}`);
    }
    if (T.ACTIVE.has(job.status)) follow();
  })();
})();
