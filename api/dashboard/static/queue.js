/* tass dashboard: the waiting queue with why each job waits, and each pool's capacity and use,
   refreshed every few seconds. */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear } = T;
  const $ = (id) => document.getElementById(id);
  const LIMIT = 200;

  function resourcesText(r) {
    r = r || {};
    const gpus = Number(r.gpus || 0);
    let text = gpus ? `${gpus} GPU${gpus === 1 ? "" : "s"}` : "1 slot";
    if (Number(r.workers || 1) > 1) text += ` × ${r.workers} workers`;
    return r.pool ? `${text} @${r.pool}` : text;
  }

  function jobLinks(ids) {
    if (!ids.length) return el("span", { class: "muted", text: "—" });
    return el(
      "ul",
      { class: "plain" },
      ids.map((id) => el("li", null, el("a", { href: T.jobHref(id) }, el("code", { text: T.shortId(id) }))))
    );
  }

  function renderQueue(page) {
    const jobs = page.items || [];
    const tbody = clear($("waiting-table").tBodies[0]);
    $("waiting-empty").hidden = jobs.length > 0;
    $("waiting-more").hidden = !page.next_cursor;
    for (const job of jobs) {
      const position = job.queue_position;
      tbody.append(
        el(
          "tr",
          { "data-job-id": job.id },
          el("td", { class: "num", text: position === null || position === undefined ? "—" : String(position) }),
          el("th", { scope: "row" }, el("a", { href: T.jobHref(job.id), text: job.name || T.shortId(job.id) })),
          el("td", { text: job.tenant }),
          el("td", { class: `priority priority-${job.priority}`, text: job.priority }),
          el("td", { text: resourcesText(job.resources) }),
          el("td", { class: "reason", text: job.pending_reason || "not ranked yet" }),
          el("td", null, T.timeEl(job.created_at, true))
        )
      );
    }
  }

  function renderPools(data) {
    const pools = data.pools || [];
    const tbody = clear($("pools-table").tBodies[0]);
    $("pools-empty").hidden = pools.length > 0;
    for (const pool of pools) {
      tbody.append(
        el(
          "tr",
          { "data-pool": pool.name, class: "pool-total" },
          el("th", { scope: "row", text: pool.name }),
          el("td", { class: "muted", text: `${(pool.workers || []).length} worker(s)` }),
          el("td", { class: "num", text: String(pool.devices) }),
          el("td", { class: "num", text: String(pool.used) }),
          el("td", { class: "num", text: String(pool.free) }),
          el("td", { class: "num", text: String(pool.waiting) }),
          el("td")
        )
      );
      for (const w of pool.workers || []) {
        tbody.append(
          el(
            "tr",
            { "data-worker": w.name },
            el("td"),
            el(
              "td",
              null,
              el("code", { text: w.name }),
              w.draining ? el("span", { class: "status status-lost", text: " draining" }) : null
            ),
            el("td", { class: "num", text: `${w.slots} ${(w.device || "").toUpperCase()}` }),
            el("td", { class: "num", text: String(w.used) }),
            el("td", { class: "num", text: String(w.free) }),
            el("td"),
            el("td", null, jobLinks(w.running_jobs || []))
          )
        );
      }
    }
    $("pools-any").textContent = `Jobs waiting for any pool: ${data.waiting_any_pool || 0}`;
  }

  T.poll(async () => {
    try {
      const [queue, pools] = await Promise.all([T.api(`/v1/queue?limit=${LIMIT}`), T.api("/v1/pools")]);
      renderQueue(queue);
      renderPools(pools);
      T.hideNotice();
      T.setUpdated($("refresh-state"));
    } catch (err) {
      if (err.status !== 401) T.showNotice(`Could not load the queue: ${err.message}`);
      throw err;
    }
  }, () => 5000);
})();
