/* tass dashboard: the training job form (POST /v1/jobs with the session cookie; the server
 * validates every field and its 422 names the one it refuses), with the job's priority class
 * and the GPUs and pool it asks the scheduler for. `?from=JOB_ID` prefills the form from that
 * job: a re-run, or a clone to change a few hyperparameters. */
"use strict";

(function () {
  const T = window.Tass;
  const $ = (id) => document.getElementById(id);
  const form = $("submit-form");
  const status = $("submit-status");
  const fromJob = document.body.dataset.fromJob || "";
  // spec fields with an input of their own; every other spec field lives in the JSON box
  const SPEC_FIELDS = { epochs: "s-epochs", batch_size: "s-batch", learning_rate: "s-lr", width: "s-width" };
  const DATA_FIELDS = new Set(["source", "path", "id", "num_examples", "sha256"]);
  let datasetExtras = {}; // a cloned dataset's other fields (split, limit), kept with its source

  /** `--data SOURCE[:VALUE]` as the CLI reads it (client/specs.py parse_data). */
  function parseData(value) {
    const text = value.trim();
    const i = text.indexOf(":");
    const source = (i < 0 ? text : text.slice(0, i)).trim();
    const rest = i < 0 ? null : text.slice(i + 1);
    if (!source) throw new Error("data: give SOURCE[:PATH], e.g. synthetic:2000 or image-folder:/data/pets");
    if (rest === null) return { source };
    if (source === "synthetic") {
      const n = Number(rest);
      if (!Number.isInteger(n)) throw new Error("data: synthetic:N takes a number of examples");
      return { source, num_examples: n };
    }
    if (!rest) throw new Error(`data: the path after ${source}: is empty`);
    return source === "dataset" ? { source, id: rest } : { source, path: rest };
  }

  function dataText(dataset) {
    if (!dataset || !dataset.source) return "";
    if (dataset.source === "synthetic") {
      return dataset.num_examples ? `synthetic:${dataset.num_examples}` : "synthetic";
    }
    const value = dataset.source === "dataset" ? dataset.id : dataset.path;
    return value ? `${dataset.source}:${value}` : dataset.source;
  }

  function parseTags(text) {
    const tags = {};
    for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
      const i = part.indexOf("=");
      if (i <= 0) throw new Error(`tags: ${JSON.stringify(part)} is not key=value`);
      tags[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    }
    return tags;
  }

  /** A number field's value: a number when it reads as one, else the text (the server's 422
   * then names the field); empty leaves the server's default. */
  function numberOrText(value) {
    const text = value.trim();
    if (!text) return undefined;
    const n = Number(text);
    return Number.isFinite(n) ? n : text;
  }

  function body() {
    let spec;
    try {
      spec = JSON.parse($("s-spec").value.trim() || "{}");
    } catch (err) {
      throw new Error(`other hyperparameters: not JSON (${err.message})`);
    }
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) {
      throw new Error("other hyperparameters: give a JSON object, e.g. {\"dropout\": 0.3}");
    }
    for (const [name, id] of Object.entries(SPEC_FIELDS)) {
      const value = numberOrText($(id).value);
      if (value !== undefined) spec[name] = value;
    }
    const dataset = parseData($("s-data").value);
    if (datasetExtras.source === dataset.source) Object.assign(dataset, datasetExtras.fields);
    const request = { type: "train", dataset, spec, tags: parseTags($("s-tags").value) };
    const name = $("s-name").value.trim();
    if (name) request.name = name;
    const registerAs = $("s-register").value.trim();
    if (registerAs) request.register_as = registerAs;
    request.priority = $("s-priority").value;
    const resources = {};
    const gpus = numberOrText($("s-gpus").value);
    if (gpus !== undefined) resources.gpus = gpus;
    const pool = $("s-pool").value.trim();
    if (pool) resources.pool = pool;
    if (Object.keys(resources).length) request.resources = resources;
    return request;
  }

  async function submit(event) {
    event.preventDefault();
    const button = $("submit-button");
    let request;
    try {
      request = body();
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    button.disabled = true;
    status.textContent = "Submitting…";
    try {
      const job = await T.api("/v1/jobs", {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify(request),
      });
      location.assign(T.jobHref(job.id));
    } catch (err) {
      status.textContent = err.status === 401 ? "" : `Not submitted: ${err.message}`;
      button.disabled = false;
    }
  }

  /** Fill the form from a job: its name (marked as a re-run), data, tags and whole spec. */
  function prefill(job) {
    $("submit-title").textContent = `Re-run ${T.jobLabel(job)}`;
    const from = $("submit-from");
    T.clear(from).append("Prefilled from ", T.el("a", { href: T.jobHref(job.id), text: T.jobLabel(job) }), "; change what you like.");
    from.hidden = false;
    $("s-name").value = job.name ? `${job.name} (re-run)` : "";
    const dataset = job.dataset || {};
    $("s-data").value = dataText(dataset);
    const fields = Object.fromEntries(Object.entries(dataset).filter(([k]) => !DATA_FIELDS.has(k)));
    datasetExtras = { source: dataset.source, fields };
    $("s-tags").value = Object.entries(job.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    $("s-register").value = job.register_as || "";
    if (job.priority) $("s-priority").value = job.priority;
    const resources = job.resources || {};
    $("s-gpus").value = resources.gpus ? String(resources.gpus) : "";
    $("s-pool").value = resources.pool || "";
    const rest = { ...(job.spec || {}) };
    for (const [name, id] of Object.entries(SPEC_FIELDS)) {
      if (rest[name] !== undefined && rest[name] !== null) $(id).value = String(rest[name]);
      delete rest[name];
    }
    $("s-spec").value = JSON.stringify(rest, null, 2);
  }

  form.addEventListener("submit", submit);
  if (fromJob) {
    T.api(`/v1/jobs/${encodeURIComponent(fromJob)}`)
      .then(prefill)
      .catch((err) => {
        if (err.status !== 401) status.textContent = `Could not load job ${fromJob}: ${err.message}`;
      });
  }
})();
