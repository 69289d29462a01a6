/* tass dashboard: the job page's log panel. It opens at the tail of the job's log (for a
 * failed job, the failed attempt's last lines and its traceback), then follows new lines with
 * long-polls until the job is final. Lines reach the page through textContent only. */
"use strict";

(function () {
  const T = window.Tass;
  const jobId = document.body.dataset.jobId;
  const box = document.getElementById("logs");
  const state = document.getElementById("logs-state");
  if (!T || !jobId || !box) return;
  const path = `/v1/jobs/${encodeURIComponent(jobId)}/logs`;
  const TAIL = 500;
  const MAX_SHOWN = 5000;
  let lastAttempt = null;
  // stay at the bottom (the newest lines) until the reader scrolls up; the panel may still be
  // hidden when the first lines arrive, so it scrolls again once it is laid out
  let stick = true;
  const toBottom = () => {
    if (stick) box.scrollTop = box.scrollHeight;
  };
  box.addEventListener("scroll", () => {
    stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
  });
  if (window.ResizeObserver) new ResizeObserver(toBottom).observe(box);

  function append(items) {
    for (const item of items) {
      if (item.attempt !== lastAttempt) {
        const head = document.createElement("span");
        head.className = "log-attempt";
        head.textContent = `── attempt ${item.attempt} ──\n`;
        box.appendChild(head);
        lastAttempt = item.attempt;
      }
      const line = document.createElement("span");
      line.className = `log-${item.stream}`;
      line.title = `${item.at} ${item.stream} (line ${item.offset})`;
      line.textContent = item.line + "\n";
      box.appendChild(line);
    }
    while (box.childNodes.length > MAX_SHOWN) box.removeChild(box.firstChild);
    toBottom();
  }

  async function run() {
    let page;
    try {
      page = await T.api(`${path}?tail=${TAIL}`);
    } catch (err) {
      state.textContent = `(could not load: ${err.message})`;
      return;
    }
    if (!page.items.length) state.textContent = "(nothing printed yet)";
    append(page.items);
    let offset = page.next_offset;
    while (!(page.finished && !page.items.length)) {
      state.textContent = page.finished ? "" : "(following)";
      try {
        page = await T.api(`${path}?offset=${offset}&follow=true&wait=20`);
      } catch (err) {
        state.textContent = `(reconnecting: ${err.message})`;
        await new Promise((resolve) => setTimeout(resolve, 5000));
        continue;
      }
      if (page.items.length) state.textContent = "";
      append(page.items);
      offset = page.next_offset;
    }
    state.textContent = box.childNodes.length ? "" : "(the job printed nothing)";
  }

  run();
})();
