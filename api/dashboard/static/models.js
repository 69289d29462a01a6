/* tass dashboard: the model registry (names, versions, aliases, the job that trained each
   version, its latest evaluation, downloads) and a predict box. */
"use strict";

(function () {
  const T = window.Tass;
  const { el, clear } = T;
  const ROOT = document.body.dataset.root || "";

  function versionRow(entry, aliasesOf, evaluations) {
    const evaluation = evaluations.get(entry.model_id);
    const accuracy = evaluation && evaluation.result ? evaluation.result.accuracy : null;
    const download = `${ROOT}/v1/models/${encodeURIComponent(entry.model_id)}/download`;
    return el(
      "tr",
      { "data-model-id": entry.model_id },
      el("th", { scope: "row", text: String(entry.version) }),
      el("td", { text: (aliasesOf.get(entry.version) || []).join(", ") }),
      el("td", null, el("code", { text: T.shortId(entry.model_id), title: entry.model_id })),
      el("td", { text: T.fmtPct(entry.metrics.val_accuracy) }),
      el("td", null, evaluation ? el("a", { href: T.jobHref(evaluation.id), text: T.fmtPct(accuracy) }) : "—"),
      el("td", null, el("a", { href: T.jobHref(entry.job_id), text: T.shortId(entry.job_id) })),
      el("td", { text: entry.dataset.source || "" }),
      el("td", null, el("a", { href: download, text: ".keras" }))
    );
  }

  function nameSection(registered, evaluations) {
    const aliasesOf = new Map();
    for (const [alias, version] of Object.entries(registered.aliases)) {
      aliasesOf.set(version, [...(aliasesOf.get(version) || []), alias]);
    }
    const heads = ["Version", "Aliases", "Model", "Val. accuracy", "Evaluation", "Job", "Dataset", "Download"];
    const table = el(
      "table",
      { class: "data" },
      T.tableHead(heads),
      el("tbody", null, registered.versions.slice().reverse().map((v) => versionRow(v, aliasesOf, evaluations)))
    );
    return el(
      "section",
      { class: "registered", "data-name": registered.name },
      el("h2", { text: registered.name }),
      registered.description ? el("p", { text: registered.description }) : null,
      el("div", { class: "table-wrap" }, table)
    );
  }

  function referenceOptions(names) {
    const select = clear(document.getElementById("predict-model"));
    for (const registered of names) {
      for (const alias of Object.keys(registered.aliases)) {
        const ref = `${registered.name}@${alias}`;
        select.append(el("option", { value: ref, text: ref }));
      }
      for (const v of registered.versions.slice().reverse()) {
        const ref = `${registered.name}:${v.version}`;
        select.append(el("option", { value: ref, text: ref }));
      }
    }
  }

  async function predict(event) {
    event.preventDefault();
    const status = document.getElementById("predict-status");
    const table = clear(document.getElementById("predict-table"));
    const files = Array.from(document.getElementById("predict-files").files);
    const ref = document.getElementById("predict-model").value;
    const body = new FormData();
    for (const file of files) body.append("files", file, file.name);
    status.textContent = "Predicting…";
    let answer;
    try {
      answer = await T.api(`/v1/models/${encodeURIComponent(ref)}/predict?top_k=3`, { method: "POST", body });
    } catch (err) {
      status.textContent = `Could not predict: ${err.message}`;
      table.hidden = true;
      return;
    }
    status.textContent = `Model ${T.shortId(answer.model_id)} (${ref})`;
    const heads = ["Image", "Label", "Top classes"];
    table.append(T.tableHead(heads));
    table.append(
      el(
        "tbody",
        null,
        answer.predictions.map((p, i) =>
          el(
            "tr",
            null,
            el("th", { scope: "row", text: files[i] ? files[i].name : String(i) }),
            el("td", { class: "predicted-label", text: p.label }),
            el("td", { text: Object.entries(p.probabilities).map(([l, v]) => `${l} ${T.fmtPct(v)}`).join(", ") })
          )
        )
      )
    );
    table.hidden = false;
  }

  async function main() {
    document.getElementById("predict-form").addEventListener("submit", predict);
    let names, evaluationJobs;
    try {
      const page = await T.api("/v1/registry?limit=200");
      names = await Promise.all(page.items.map((n) => T.api(`/v1/registry/${encodeURIComponent(n.name)}`)));
      evaluationJobs = (await T.api("/v1/jobs?type=evaluate&status=succeeded&limit=200")).items;
    } catch (err) {
      document.getElementById("models-empty").hidden = false;
      document.getElementById("models-empty").textContent = `Could not load: ${err.message}`;
      return;
    }
    const evaluations = new Map(); // model id -> its newest succeeded evaluation (jobs come newest first)
    for (const job of evaluationJobs) if (!evaluations.has(job.model_id)) evaluations.set(job.model_id, job);
    document.getElementById("models-empty").hidden = names.length > 0;
    clear(document.getElementById("registry")).append(...names.map((n) => nameSection(n, evaluations)));
    referenceOptions(names);
  }

  main();
})();
