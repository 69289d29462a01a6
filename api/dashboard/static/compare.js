/* tass dashboard: compare 2-5 training jobs (validation curves, hyperparameter differences). */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear } = T;
  const $ = (id) => document.getElementById(id);
  const ids = (document.body.dataset.jobIds || "").split(",").filter(Boolean);
  const DASHES = [null, "6 4", "2 3", "10 3 2 3", "1 2"];

  function fail(message) {
    $("compare-loading").textContent = message;
  }

  async function main() {
    const unique = [...new Set(ids)];
    if (unique.length < 2 || unique.length > 5) {
      fail("Pick 2 to 5 training jobs on the jobs page, then press Compare.");
      return;
    }
    let entries;
    try {
      entries = await Promise.all(
        unique.map(async (id) => {
          const job = await T.api(`/v1/jobs/${encodeURIComponent(id)}`);
          const rows = job.type === "train" ? await T.metricRows(id, "epoch") : [];
          return { job, rows };
        })
      );
    } catch (err) {
      fail(err.status === 404 ? `A job was not found: ${err.message}` : `Could not load: ${err.message}`);
      return;
    }
    const notTrain = entries.filter((e) => e.job.type !== "train");
    if (notTrain.length) {
      fail(`Only training jobs can be compared: ${notTrain.map((e) => T.jobLabel(e.job)).join(", ")} is not one.`);
      return;
    }
    entries.forEach((e, i) => {
      e.color = T.PALETTE[i % T.PALETTE.length];
      e.dash = DASHES[i % DASHES.length];
      e.label = T.jobLabel(e.job);
    });
    // two jobs with the same name: add their short ids
    const counts = {};
    for (const e of entries) counts[e.label] = (counts[e.label] || 0) + 1;
    for (const e of entries) if (counts[e.label] > 1) e.label += ` (${T.shortId(e.job.id)})`;

    $("compare-loading").hidden = true;
    $("compare-content").hidden = false;
    renderJobs(entries);
    renderCurves(entries);
    renderDiff(entries);
  }

  function renderJobs(entries) {
    const table = clear($("cmp-jobs"));
    table.append(T.tableHead(["Job", "Status", "Epochs", "Best val acc", "Final val loss", "Duration"]));
    const tbody = el("tbody");
    for (const e of entries) {
      const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.borderTopColor = e.color;
      swatch.style.borderTopStyle = e.dash ? "dashed" : "solid";
      const top = T.bestOf(e.rows, "val_accuracy");
      const last = e.rows.length ? e.rows[e.rows.length - 1].values : {};
      tbody.append(
        el(
          "tr",
          { "data-job-id": e.job.id },
          el("th", { scope: "row" }, swatch, el("a", { href: T.jobHref(e.job.id), text: e.label })),
          el("td", null, T.statusBadge(e.job.status)),
          el("td", { text: String(e.rows.length) }),
          el("td", { text: top ? `${T.fmtPct(top.value)} (epoch ${top.step})` : "—" }),
          el("td", { text: T.fmtNum(last.val_loss) }),
          el("td", { text: T.fmtDuration(T.jobDuration(e.job)) })
        )
      );
    }
    table.append(tbody);
  }

  function series(entries, name) {
    return entries.map((e) => ({
      name: e.label,
      color: e.color,
      dash: e.dash,
      points: e.rows
        .filter((r) => typeof r.values[name] === "number")
        .map((r) => ({ x: r.step, y: r.values[name] })),
    }));
  }

  function renderCurves(entries) {
    T.lineChart($("cmp-val-accuracy"), {
      title: "Validation accuracy per epoch",
      xLabel: "epoch",
      yLabel: "val accuracy",
      xMin: 1,
      xInteger: true,
      yFormat: (v) => T.fmtPct(v, 0),
      series: series(entries, "val_accuracy"),
    });
    T.lineChart($("cmp-val-loss"), {
      title: "Validation loss per epoch",
      xLabel: "epoch",
      yLabel: "val loss",
      xMin: 1,
      xInteger: true,
      series: series(entries, "val_loss"),
    });
  }

  function renderDiff(entries) {
    const flats = entries.map((e) => ({
      ...T.flatten(e.job.spec || {}),
      ...T.flatten(e.job.dataset || {}, "dataset"),
    }));
    const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))].sort();
    const differing = keys.filter((k) => new Set(flats.map((f) => JSON.stringify(f[k]))).size > 1);
    const table = clear($("cmp-diff"));
    $("cmp-nodiff").hidden = differing.length > 0;
    table.hidden = differing.length === 0;
    if (!differing.length) return;
    table.append(T.tableHead(["Parameter", ...entries.map((e) => e.label)]));
    const tbody = el("tbody");
    for (const key of differing) {
      tbody.append(
        el(
          "tr",
          { "data-param": key },
          el("th", { scope: "row" }, el("code", { text: key })),
          flats.map((f) => el("td", { text: T.fmtValue(f[key]) }))
        )
      );
    }
    table.append(tbody);
  }

  main();
})();
