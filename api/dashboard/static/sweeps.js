/* tass dashboard: the sweeps list (newest first), each linking to its page. */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear, FINAL } = T;
  const BASE = document.body.dataset.base || "/dashboard";

  async function main() {
    let page;
    try {
      page = await T.api("/v1/sweeps?limit=100");
    } catch (err) {
      document.getElementById("sweeps-empty").hidden = false;
      document.getElementById("sweeps-empty").textContent = `Could not load: ${err.message}`;
      return;
    }
    const table = clear(document.getElementById("sweeps-table"));
    document.getElementById("sweeps-empty").hidden = page.items.length > 0;
    if (!page.items.length) return;
    const heads = ["Sweep", "Status", "Method", "Trials done", "Objective", "Best"];
    table.append(T.tableHead(heads));
    const tbody = el("tbody");
    for (const s of page.items) {
      const done = s.trials.filter((t) => FINAL.has(t.status)).length;
      tbody.append(
        el(
          "tr",
          { "data-sweep-id": s.id },
          el(
            "th",
            { scope: "row" },
            el("a", { href: `${BASE}/sweeps/${encodeURIComponent(s.id)}`, text: s.name || T.shortId(s.id) })
          ),
          el("td", null, T.statusBadge(s.status)),
          el("td", { text: s.method }),
          el("td", { text: `${done} / ${s.max_trials}` }),
          el("td", { text: `${s.objective.goal} ${s.objective.metric}` }),
          el("td", { text: s.best ? T.fmtNum(s.best.value) : "—" })
        )
      );
    }
    table.append(tbody);
  }

  main();
})();
