/* tass dashboard: every trained model (registered or not, with a register action), the model
   registry (names, versions, aliases and an alias action, the job that trained each version,
   its latest evaluation, downloads) and a predict box. Actions post to the /v1 API with the
   session cookie, under the same same-origin rule as every other dashboard action. */
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
      el("div", { class: "table-wrap" }, table),
      aliasForm(registered)
    );
  }

  /** "Set alias [name] -> [version]": PUT /v1/registry/NAME/aliases/ALIAS (moves it if set). */
  function aliasForm(registered) {
    const alias = el("input", { type: "text", required: true, maxlength: "64", autocomplete: "off", spellcheck: "false" });
    const versions = registered.versions.slice().reverse();
    const version = el("select", null, versions.map((v) => el("option", { value: String(v.version), text: String(v.version) })));
    const form = el(
      "form",
      { class: "inline-form alias-form" },
      el("label", null, "Alias ", alias),
      el("label", null, "Version ", version),
      el("button", { type: "submit", class: "btn", text: "Set alias" })
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const path = `/v1/registry/${encodeURIComponent(registered.name)}/aliases/${encodeURIComponent(alias.value.trim())}`;
      act(path, "PUT", { version: Number(version.value) }, (a) => `${a.name}@${a.alias} is version ${a.version}.`);
    });
    return form;
  }

  /** Every model of the tenant's, newest first, with where it is registered and a register form. */
  function modelRow(model, registeredAs) {
    const names = registeredAs.get(model.id) || [];
    const name = el("input", { type: "text", required: true, maxlength: "100", autocomplete: "off", spellcheck: "false" });
    const form = el(
      "form",
      { class: "inline-form register-form" },
      name,
      el("button", { type: "submit", class: "btn", text: "Register" })
    );
    name.setAttribute("aria-label", "Registry name");
    name.setAttribute("placeholder", "registry name");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const path = `/v1/registry/${encodeURIComponent(name.value.trim())}/versions`;
      act(path, "POST", { model_id: model.id }, (v) =>
        v.created ? `Registered as ${v.name} version ${v.version}.` : `Already ${v.name} version ${v.version}.`
      );
    });
    const download = `${ROOT}/v1/models/${encodeURIComponent(model.id)}/download`;
    return el(
      "tr",
      { "data-model-id": model.id },
      el("td", null, el("code", { text: T.shortId(model.id), title: model.id })),
      el("td", { text: model.name || "—" }),
      el("td", null, el("a", { href: T.jobHref(model.job_id), text: T.shortId(model.job_id) })),
      el("td", null, T.timeEl(model.created_at, true)),
      el("td", { class: "num", text: T.fmtPct((model.metrics || {}).val_accuracy) }),
      el("td", { class: names.length ? "registered-as" : "registered-as muted", text: names.length ? names.join(", ") : "not registered" }),
      el("td", null, el("a", { href: download, text: ".keras" })),
      el("td", null, form)
    );
  }

  function renderAllModels(models, names) {
    const registeredAs = new Map(); // model id -> ["NAME:VERSION", ...]
    for (const registered of names) {
      for (const v of registered.versions) {
        registeredAs.set(v.model_id, [...(registeredAs.get(v.model_id) || []), `${registered.name}:${v.version}`]);
      }
    }
    const heads = ["Model", "Name", "Job", "Created", "Val. accuracy", "Registered as", "Download", "Register"];
    clear(document.getElementById("all-models")).append(
      T.tableHead(heads, ["Val. accuracy"]),
      el("tbody", null, models.map((m) => modelRow(m, registeredAs)))
    );
    document.getElementById("all-models-empty").hidden = models.length > 0;
  }

  /** Send one registry change, say what happened, and show the page as it now is. */
  async function act(path, method, payload, describe) {
    const status = document.getElementById("models-status");
    status.textContent = "Saving…";
    try {
      const answer = await T.api(path, {
        method,
        headers: { Accept: "application/json", "Content-Type": "application/json" },
        body: JSON.stringify(payload),
      });
      status.textContent = describe(answer);
    } catch (err) {
      status.textContent = err.status === 401 ? "" : `Not saved: ${err.message}`;
      return;
    }
    await load();
  }

  /** All pages of the tenant's models, up to `cap`. */
  async function allModels(cap) {
    const models = [];
    let cursor = null;
    do {
      const q = new URLSearchParams({ limit: "200" });
      if (cursor) q.set("cursor", cursor);
      const page = await T.api(`/v1/models?${q}`);
      models.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && models.length < cap);
    return models;
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

  async function load() {
    let names, evaluationJobs, models;
    try {
      const page = await T.api("/v1/registry?limit=200");
      names = await Promise.all(page.items.map((n) => T.api(`/v1/registry/${encodeURIComponent(n.name)}`)));
      evaluationJobs = (await T.api("/v1/jobs?type=evaluate&status=succeeded&limit=200")).items;
      models = await allModels(1000);
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
    renderAllModels(models, names);
  }

  document.getElementById("predict-form").addEventListener("submit", predict);
  load();
})();
