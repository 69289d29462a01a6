/* tass dashboard: the tenant's uploaded datasets (status, classes with counts, digest, why one
   failed), an upload box with progress, and delete. */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear } = T;
  const ROOT = document.body.dataset.root || "";
  const $ = (id) => document.getElementById(id);
  const TYPES = [
    [".tar.gz", "application/gzip"],
    [".tgz", "application/gzip"],
    [".tar", "application/x-tar"],
    [".zip", "application/zip"],
  ];

  function classesText(d) {
    if (!d.classes) return d.status === "failed" ? d.error || "" : "—";
    const train = (d.class_counts || {}).train || {};
    return d.classes.map((c) => `${c} ${train[c] ?? 0}`).join(", ");
  }

  async function remove(d) {
    if (!window.confirm(`Delete dataset ${d.name}? Its archive is removed.`)) return;
    try {
      await T.api(`/v1/datasets/${encodeURIComponent(d.id)}`, { method: "DELETE" });
      poller.now();
    } catch (err) {
      T.showNotice(`Could not delete ${d.name}: ${err.message}`);
    }
  }

  function row(d) {
    const failed = d.status === "failed";
    return el(
      "tr",
      { "data-dataset-id": d.id },
      el("th", { scope: "row" }, el("span", { text: d.name }), el("br"), el("code", { class: "small", text: d.id })),
      el("td", null, el("span", { class: `status status-${failed ? "failed" : d.status === "ready" ? "succeeded" : "running"}`, text: d.status })),
      el("td", { class: "num", text: d.num_examples == null ? "—" : String(d.num_examples) }),
      el("td", { class: failed ? "error-text" : "", text: classesText(d) }),
      el("td", { class: "num", text: T.fmtBytes(d.size) }),
      el("td", null, el("code", { text: d.sha256.slice(0, 12), title: d.sha256 })),
      el("td", null, T.timeEl(d.created_at)),
      el("td", null, el("button", { type: "button", class: "link", text: "Delete", onclick: () => remove(d) }))
    );
  }

  function render(data) {
    const items = data.items || [];
    const tbody = clear($("datasets-table").tBodies[0]);
    $("datasets-empty").hidden = items.length > 0;
    for (const d of items) tbody.append(row(d));
  }

  /* XMLHttpRequest, not fetch: it reports upload progress. The file streams from disk. */
  function send(file, name) {
    const type = TYPES.find(([suffix]) => file.name.toLowerCase().endsWith(suffix));
    if (!type) return Promise.reject(new Error("choose a .tar.gz, .tgz, .tar or .zip archive"));
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${ROOT}/v1/datasets?name=${encodeURIComponent(name)}`);
      xhr.setRequestHeader("Content-Type", type[1]);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) $("upload-progress").value = e.loaded / e.total;
      };
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (err) {
          body = null;
        }
        if (xhr.status === 202) resolve(body);
        else reject(new Error((body && typeof body.detail === "string" && body.detail) || `HTTP ${xhr.status}`));
      };
      xhr.onerror = () => reject(new Error("the server cannot be reached"));
      xhr.send(file);
    });
  }

  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) return;
    const name = $("upload-name").value.trim() || file.name;
    $("upload-progress").hidden = false;
    $("upload-progress").value = 0;
    $("upload-state").textContent = `uploading ${file.name}…`;
    try {
      const d = await send(file, name);
      $("upload-state").textContent = `uploaded ${d.name}: validating`;
      poller.now();
    } catch (err) {
      $("upload-state").textContent = `not uploaded: ${err.message}`;
    } finally {
      $("upload-progress").hidden = true;
    }
  });

  const poller = T.poll(async () => {
    try {
      render(await T.api("/v1/datasets"));
      T.hideNotice();
      T.setUpdated($("refresh-state"));
    } catch (err) {
      if (err.status !== 401) T.showNotice(`Could not load datasets: ${err.message}`);
      throw err;
    }
  }, () => 3000);
})();
