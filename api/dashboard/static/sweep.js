/* tass dashboard: one sweep (trials table, every trial's curve, parameter vs objective). */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear, FINAL } = T;
  const $ = (id) => document.getElementById(id);
  const sweepId = document.body.dataset.sweepId || "";
  const REFRESH_MS = 5000;

  function fail(message) {
    $("sweep-loading").hidden = false;
    $("sweep-loading").textContent = message;
  }

  async function load() {
    let sweep;
    try {
      sweep = await T.api(`/v1/sweeps/${encodeURIComponent(sweepId)}`);
    } catch (err) {
      fail(err.status === 404 ? `No sweep ${sweepId}.` : `Could not load: ${err.message}`);
      return;
    }
    const metric = sweep.objective.metric;
    const curves = await Promise.all(
      sweep.trials.map(async (t) => {
        const rows = await T.metricRows(t.job_id, "epoch");
        return rows
          .filter((r) => typeof r.values[metric] === "number")
          .map((r) => ({ x: r.step, y: r.values[metric] }));
      })
    );
    $("sweep-loading").hidden = true;
    $("sweep-content").hidden = false;
    render(sweep, curves);
    if (!FINAL.has(sweep.status)) setTimeout(load, REFRESH_MS);
  }

  function render(sweep, curves) {
    const metric = sweep.objective.metric;
    $("sweep-title").textContent = `Sweep ${sweep.name || T.shortId(sweep.id)}`;
    const done = sweep.trials.filter((t) => FINAL.has(t.status)).length;
    clear($("sweep-summary")).append(
      T.statusBadge(sweep.status),
      ` ${sweep.method}, ${done} of ${sweep.max_trials} trials done, ` +
        `${sweep.max_parallel} at a time, ${sweep.objective.goal} ${metric}` +
        (sweep.early_stopping ? `, early stopping: ${sweep.early_stopping.type}` : "")
    );
    const best = sweep.best;
    clear($("sweep-best")).append(
      best
        ? el(
            "span",
            null,
            "Best: ",
            el("a", { href: T.jobHref(best.job_id), text: `trial ${best.number}` }),
            ` ${metric} ${T.fmtNum(best.value)}`
          )
        : "No best trial yet."
    );
    renderTrials(sweep);
    renderCurves(sweep, curves);
    renderParams(sweep);
  }

  function renderTrials(sweep) {
    const names = Object.keys(sweep.parameters);
    const table = clear($("sweep-trials"));
    const heads = ["#", "Status", ...names, `Best ${sweep.objective.metric}`, "Epochs"];
    table.append(T.tableHead(heads));
    const tbody = el("tbody");
    for (const t of sweep.trials) {
      const status = el("td", null, T.statusBadge(t.status));
      if (t.stopped_early) status.append(el("span", { class: "muted", text: " stopped early" }));
      tbody.append(
        el(
          "tr",
          { "data-job-id": t.job_id },
          el("th", { scope: "row" }, el("a", { href: T.jobHref(t.job_id), text: String(t.number) })),
          status,
          names.map((n) => el("td", { text: T.fmtValue(t.params[n]) })),
          el("td", { text: T.fmtNum(t.best_value) }),
          el("td", { text: String(t.epochs_run) })
        )
      );
    }
    table.append(tbody);
  }

  function renderCurves(sweep, curves) {
    T.lineChart($("sweep-curves"), {
      title: `${sweep.objective.metric} per epoch, one line per trial`,
      xLabel: "epoch",
      yLabel: sweep.objective.metric,
      xMin: 1,
      xInteger: true,
      series: sweep.trials.map((t, i) => ({
        name: `trial ${t.number}`,
        color: T.PALETTE[i % T.PALETTE.length],
        dash: t.stopped_early ? "4 3" : null,
        points: curves[i],
      })),
    });
  }

  function renderParams(sweep) {
    const holder = clear($("sweep-params"));
    for (const name of Object.keys(sweep.parameters)) {
      const points = sweep.trials
        .filter((t) => typeof t.params[name] === "number" && typeof t.best_value === "number")
        .map((t) => ({ x: t.params[name], y: t.best_value }))
        .sort((a, b) => a.x - b.x);
      const figure = el("figure", { class: "chart", id: `sweep-param-${name.replace(/\W/g, "-")}` });
      holder.append(figure);
      T.lineChart(figure, {
        title: `${name} against best ${sweep.objective.metric}`,
        xLabel: name,
        yLabel: sweep.objective.metric,
        empty: "Not numeric, or no values yet",
        series: [{ name: "trials", points, line: false }],
      });
    }
  }

  load();
})();
