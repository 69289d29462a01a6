/* tass dashboard: small hand-written SVG line charts. */
"use strict";

(function () {
  const { el, svg, clear, fmtNum } = window.Tass;

  // Okabe-Ito: distinguishable with colour-blindness; series also differ by dash pattern.
  const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
  const W = 560;
  const H = 300;
  const M = { top: 16, right: 18, bottom: 44, left: 60 };

  /** Round tick values covering [lo, hi]. */
  function ticks(lo, hi, count) {
    if (!(hi > lo)) {
      const pad = Math.abs(lo) * 0.1 || 1;
      lo -= pad;
      hi += pad;
    }
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const step = (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag;
    const start = Math.floor(lo / step) * step;
    const end = Math.ceil(hi / step) * step;
    const out = [];
    for (let v = start; v <= end + step / 2; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  /** Keep at most `max` points (every k-th, always the last): huge step series stay light. */
  function thin(points, max) {
    if (points.length <= max) return points;
    const k = Math.ceil(points.length / max);
    const out = points.filter((_, i) => i % k === 0);
    if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]);
    return out;
  }

  /**
   * Draw a line chart into `figure` (replacing its content).
   * opts: {title, xLabel, yLabel, series: [{name, points: [{x, y}], color, dash, markers, line}],
   *        xMin, xMax, xInteger, yMin, yMax, yFormat, empty, maxPoints}
   */
  function lineChart(figure, opts) {
    clear(figure);
    const series = opts.series.map((s, i) => ({
      ...s,
      color: s.color || PALETTE[i % PALETTE.length],
      points: thin(
        s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)),
        opts.maxPoints || 800
      ),
    }));
    const all = series.flatMap((s) => s.points);
    const yFormat = opts.yFormat || fmtNum;
    const titleId = `${figure.id || "chart"}-title`;
    const descId = `${figure.id || "chart"}-desc`;

    const root = svg("svg", {
      viewBox: `0 0 ${W} ${H}`,
      class: "chart-svg",
      role: "img",
      "aria-labelledby": `${titleId} ${descId}`,
      preserveAspectRatio: "xMidYMid meet",
    });
    const summary = series
      .map((s) => {
        const last = s.points[s.points.length - 1];
        return last
          ? `${s.name}: ${s.points.length} points, last ${yFormat(last.y)} at ${opts.xLabel} ${last.x}`
          : `${s.name}: no data`;
      })
      .join("; ");
    root.append(svg("desc", { id: descId, text: summary }));

    const plotW = W - M.left - M.right;
    const plotH = H - M.top - M.bottom;
    const xs = all.map((p) => p.x);
    const ys = all.map((p) => p.y);
    let xLo = opts.xMin !== undefined ? opts.xMin : Math.min(...xs);
    let xHi = opts.xMax !== undefined ? Math.max(opts.xMax, ...xs) : Math.max(...xs);
    if (!Number.isFinite(xLo)) xLo = 0;
    if (!Number.isFinite(xHi)) xHi = 1;
    if (xHi <= xLo) xHi = xLo + 1;
    let yLo = opts.yMin !== undefined ? Math.min(opts.yMin, ...ys) : Math.min(...ys);
    let yHi = opts.yMax !== undefined ? Math.max(opts.yMax, ...ys) : Math.max(...ys);
    if (!Number.isFinite(yLo)) yLo = 0;
    if (!Number.isFinite(yHi)) yHi = 1;
    const yTicks = ticks(yLo, yHi, 5);
    yLo = Math.min(yLo, yTicks[0]);
    yHi = Math.max(yHi, yTicks[yTicks.length - 1]);
    if (yHi <= yLo) yHi = yLo + 1;
    let xTicks = ticks(xLo, xHi, 6).filter((v) => v >= xLo - 1e-9 && v <= xHi + 1e-9);
    if (opts.xInteger) xTicks = xTicks.filter((v) => Number.isInteger(v));

    const sx = (x) => M.left + ((x - xLo) / (xHi - xLo)) * plotW;
    const sy = (y) => M.top + plotH - ((y - yLo) / (yHi - yLo)) * plotH;

    const grid = svg("g", { class: "grid", "aria-hidden": "true" });
    for (const v of yTicks) {
      const y = sy(v);
      grid.append(svg("line", { x1: M.left, x2: M.left + plotW, y1: y, y2: y }));
      grid.append(
        svg("text", { x: M.left - 8, y: y + 4, "text-anchor": "end", class: "tick", text: yFormat(v) })
      );
    }
    for (const v of xTicks) {
      const x = sx(v);
      grid.append(svg("line", { x1: x, x2: x, y1: M.top, y2: M.top + plotH, class: "vgrid" }));
      grid.append(
        svg("text", { x, y: M.top + plotH + 18, "text-anchor": "middle", class: "tick", text: fmtNum(v) })
      );
    }
    grid.append(
      svg("rect", { x: M.left, y: M.top, width: plotW, height: plotH, class: "frame" })
    );
    grid.append(
      svg("text", {
        x: M.left + plotW / 2,
        y: H - 6,
        "text-anchor": "middle",
        class: "axis-label",
        text: opts.xLabel,
      })
    );
    grid.append(
      svg("text", {
        x: 14,
        y: M.top + plotH / 2,
        "text-anchor": "middle",
        class: "axis-label",
        transform: `rotate(-90 14 ${M.top + plotH / 2})`,
        text: opts.yLabel || "",
      })
    );
    root.append(grid);

    if (all.length === 0) {
      root.append(
        svg("text", {
          x: M.left + plotW / 2,
          y: M.top + plotH / 2,
          "text-anchor": "middle",
          class: "empty",
          text: opts.empty || "No data yet",
        })
      );
    }

    series.forEach((s) => {
      if (s.points.length === 0) return;
      const g = svg("g", { class: "series", "data-series": s.name });
      const line = svg("polyline", {
        points: s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" "),
        fill: "none",
        stroke: s.color,
        "stroke-width": s.markers === false ? 1.5 : 2,
        "stroke-dasharray": s.dash || null,
        "stroke-linejoin": "round",
        "data-points": s.points.length,
        class: "line",
      });
      if (s.line !== false) g.append(line); // line: false draws a scatter
      if (s.markers !== false) {
        for (const p of s.points) {
          g.append(
            svg(
              "circle",
              { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 3.5, fill: s.color, class: "pt" },
              svg("title", { text: `${s.name} — ${opts.xLabel} ${p.x}: ${yFormat(p.y)}` })
            )
          );
        }
      }
      root.append(g);
    });

    const caption = el("figcaption", { id: titleId, text: opts.title });
    const legend = el("ul", { class: "legend", "aria-label": `${opts.title} legend` });
    for (const s of series) {
      const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.borderTopColor = s.color;
      swatch.style.borderTopStyle = s.dash ? "dashed" : "solid";
      legend.append(el("li", null, swatch, s.name));
    }
    figure.append(caption, root, legend);
    return root;
  }

  window.Tass.PALETTE = PALETTE;
  window.Tass.lineChart = lineChart;
})();
