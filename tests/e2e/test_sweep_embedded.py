"""A sweep end to end on the embedded service (`tass up`: SQLite, local artifacts, SQLite
queue), driven through `tass sweep` as a user would: four trials over a 2x2 grid where two
learning rates are hopeless, ASHA stops those at the first rung (they keep their metrics and
checkpoints), and the sweep finishes with the best of the trials that ran to the end."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.embedded import Embedded, running_embedded

pytestmark = pytest.mark.integration

# Epochs long enough (a few seconds) that a decision taken at the next heartbeat lands before a
# hopeless trial has finished, even on a loaded 2-core machine.
EPOCHS = 4
SWEEP = {
    "name": "e2e-sweep",
    "spec": {
        "model": "alexnet-cifar",
        "width": 0.25,
        "batch_size": 64,
        "epochs": EPOCHS,
        "optimizer": "adam",
        "schedule": "constant",
    },
    "dataset": {"source": "synthetic", "num_examples": 1500},
    "method": "grid",
    "parameters": {
        "learning_rate": {"values": [0.003, 1e-6]},
        "dropout": {"values": [0.0, 0.25]},
    },
    "objective": {"metric": "val_loss", "goal": "minimize"},
    "max_trials": 4,
    "max_parallel": 2,
    "early_stopping": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},
}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Embedded]:
    with running_embedded(tmp_path_factory.mktemp("sweep")) as service:
        yield service


def test_a_sweep_stops_the_hopeless_trials_early_and_ends_with_the_best(embedded, tmp_path):
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text(json.dumps(SWEEP))  # JSON is YAML
    created = embedded.tass("sweep", "create", "--spec", str(spec_file))
    assert created.returncode == 0, created.stderr + embedded.service.log_tail()
    sweep_id = created.stdout.strip()

    watched = embedded.tass("sweep", "status", sweep_id, "--watch", "--json", timeout=400)
    assert watched.returncode == 0, watched.stderr + embedded.service.log_tail()
    sweep = json.loads(watched.stdout)
    assert sweep["status"] == "succeeded"
    trials = sweep["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    assert all(t["status"] in ("succeeded", "cancelled") for t in trials)

    hopeless = [t for t in trials if t["params"]["learning_rate"] == 1e-6]
    assert len(hopeless) == 2, trials
    for trial in hopeless:
        assert trial["stopped_early"] and trial["status"] == "cancelled", trial
        assert 1 <= trial["epochs_run"] < EPOCHS
    assert sum(t["epochs_run"] for t in trials) < len(trials) * EPOCHS, trials

    finished = [t for t in trials if t["status"] == "succeeded"]
    winner = min(finished, key=lambda t: t["final_value"])
    best = json.loads(embedded.tass("sweep", "best", sweep_id, "--json").stdout)
    assert best["job_id"] == winner["job_id"] and best["value"] == winner["final_value"]
    assert best["model_id"] and best["params"] == winner["params"]

    with embedded.api() as client:
        jobs = client.get("/v1/jobs", params={"sweep": sweep_id}).json()["items"]
        assert sorted(j["id"] for j in jobs) == sorted(t["job_id"] for t in trials)
        for trial in hopeless:  # a stopped trial keeps its metrics and checkpoints
            metrics = client.get(f"/v1/jobs/{trial['job_id']}/metrics").json()["items"]
            assert len(metrics) == trial["epochs_run"]
            artifacts = client.get(f"/v1/jobs/{trial['job_id']}/artifacts").json()
            assert any(a["kind"] == "checkpoint" for a in artifacts)
        assert client.get(f"/v1/models/{best['model_id']}").status_code == 200

    table = embedded.tass("sweep", "status", sweep_id)
    assert table.returncode == 0 and "stopped early" in table.stdout
    assert embedded.tass("sweep", "cancel", sweep_id).returncode != 0, "already over: 409"
