"""The README's `TassClient` example runs as written (against a scripted API): submit, wait,
print the per-epoch history, download the model with its checksum verified."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
from client_fakes import BASE_URL, make_job

from tass.client import api_client

README = Path(api_client.__file__).resolve().parents[1] / "README.md"
MODEL = b"PK\x03\x04 a keras zip"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("### From Python (`TassClient`)") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs(api, monkeypatch, tmp_path, capsys):
    finished = make_job(status="succeeded", model_id="model-1")
    api.route("POST", "/v1/jobs", httpx.Response(202, json=make_job()))
    api.sequence(
        "GET",
        "/v1/jobs/job-1",
        [httpx.Response(200, json=make_job(status=s)) for s in ("queued", "running")]
        + [httpx.Response(200, json=finished)],
    )
    rows = [{"kind": "epoch", "step": e, "values": {"val_accuracy": e / 10}} for e in (1, 2, 3)]
    api.route("GET", "/v1/jobs/job-1/metrics", httpx.Response(200, json={"items": rows}))
    digest = hashlib.sha256(MODEL).hexdigest()
    headers = {
        "X-Checksum-Sha256": digest,
        "Content-Disposition": 'attachment; filename="model-1.keras"',
    }
    api.route(
        "GET", "/v1/models/model-1/download", httpx.Response(200, content=MODEL, headers=headers)
    )

    class ScriptedClient(api_client.TassClient):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(BASE_URL, api_key="k", transport=api.transport)

    monkeypatch.setattr(api_client, "TassClient", ScriptedClient)
    monkeypatch.setattr("time.sleep", lambda _seconds: None)
    monkeypatch.chdir(tmp_path)

    exec(compile(readme_example(), "README.md", "exec"), {})  # our own README's example

    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == ["1 0.1", "2 0.2", "3 0.3"]
    assert Path(printed[3]).read_bytes() == MODEL
    [body] = api.bodies("POST", "/v1/jobs")
    assert body["name"] == "from-python" and body["spec"]["epochs"] == 3


def test_the_readme_names_only_methods_the_client_has():
    text = README.read_text()
    start = text.index("### From Python (`TassClient`)")
    section = text[start : text.index("\n#", start + 1)]  # up to the next heading
    named = set(re.findall(r"`(\w+)`", section)) | set(re.findall(r"tass\.(\w+)\(", section))
    methods = {n for n in named if (n.islower() and "_" in n) or n == "request"}
    missing = [m for m in methods if not callable(getattr(api_client.TassClient, m, None))]
    assert methods and not missing, missing
