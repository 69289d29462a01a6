/* tass dashboard: connected workers and queue lengths, refreshed every few seconds. */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear } = T;
  const $ = (id) => document.getElementById(id);

  function gpuText(gpus) {
    return (gpus || [])
      .map((g) => (typeof g === "string" ? g : g.name || g.model || g.device || JSON.stringify(g)))
      .join(", ");
  }

  function render(data) {
    const queues = clear($("queues-table").tBodies[0]);
    for (const q of data.queues || []) {
      queues.append(
        el(
          "tr",
          { "data-queue": q.name },
          el("th", { scope: "row", text: q.name }),
          el("td", { class: "num", text: String(q.queued) })
        )
      );
    }
    const workers = data.workers || [];
    const tbody = clear($("workers-table").tBodies[0]);
    $("workers-empty").hidden = workers.length > 0;
    for (const w of workers) {
      const device = (w.device || "").toUpperCase();
      const gpus = gpuText(w.gpus);
      const jobs = w.current_jobs || [];
      tbody.append(
        el(
          "tr",
          { "data-worker": w.name, class: w.alive ? "" : "lost" },
          el("th", { scope: "row" }, el("code", { text: w.name })),
          el("td", { text: w.host || "—" }),
          el(
            "td",
            null,
            el("span", { class: `status ${w.alive ? "status-alive" : "status-lost"}`, text: w.alive ? "alive" : "lost" })
          ),
          el("td", { text: (w.queues || []).join(", ") || "—" }),
          el(
            "td",
            null,
            el("span", { class: `device device-${(w.device || "").toLowerCase()}`, text: device || "—" }),
            gpus ? el("span", { class: "muted small", text: ` ${gpus}` }) : null
          ),
          el(
            "td",
            null,
            jobs.length
              ? el(
                  "ul",
                  { class: "plain" },
                  jobs.map((id) => el("li", null, el("a", { href: T.jobHref(id) }, el("code", { text: T.shortId(id) }))))
                )
              : el("span", { class: "muted", text: "idle" })
          ),
          el("td", null, T.timeEl(w.last_seen_at, true)),
          el("td", null, T.timeEl(w.started_at))
        )
      );
    }
  }

  const poller = T.poll(async () => {
    try {
      render(await T.api("/v1/workers"));
      T.hideNotice();
      T.setUpdated($("refresh-state"));
    } catch (err) {
      if (err.status === 404) {
        T.showNotice("This server does not report workers.");
        poller.stop();
      } else if (err.status === 403) {
        T.showNotice("Only an admin key can see the workers.");
        poller.stop();
      } else if (err.status !== 401) T.showNotice(`Could not load workers: ${err.message}`);
      throw err;
    }
  }, () => 5000);
})();
