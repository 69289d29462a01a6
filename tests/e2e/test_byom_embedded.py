"""Bring your own model through the embedded service and the `tass` CLI: a Keras architecture
from a JSON file trains at its own image size, and fine-tuning it on a 2-class dataset
records the parent in the finished model's lineage (GET /v1/models/{id})."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.architectures import layer, small_cnn
from tests.support.embedded import Embedded, running_embedded

pytestmark = pytest.mark.integration

FAST = ["--batch-size", "32", "--jit-compile", "off", "--optimizer", "adam", "--lr", "0.01"]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Embedded]:  # type: ignore[no-untyped-def]
    with running_embedded(tmp_path_factory.mktemp("byom")) as service:
        yield service


def submitted(embedded: Embedded, *args: str) -> dict:
    result = embedded.tass("submit", "train", *FAST, *args, "--wait")
    assert result.returncode == 0, result.stderr + embedded.service.log_tail()
    job_id = result.stdout.strip().splitlines()[0]
    return json.loads(embedded.tass("status", job_id, "--json").stdout)


def test_a_json_architecture_trains_and_a_fine_tuned_model_names_its_parent(embedded, tmp_path):
    architecture = small_cnn(48, 3, units=4)
    architecture["config"]["layers"][3]["config"]["activation"] = "linear"  # logits
    path = tmp_path / "model.json"
    path.write_text(json.dumps(architecture))
    parent = submitted(
        embedded, "--architecture", str(path), "--data", "synthetic:200", "--num-classes", "4",
        "--epochs", "2", "--register-as", "mine",
    )  # fmt: skip
    assert parent["status"] == "succeeded"
    assert parent["spec"]["model"] == "keras-json" and parent["spec"]["image_size"] == 48

    child = submitted(
        embedded, "--init-from", "mine:1", "--freeze", "all-but-head", "--data", "synthetic:100",
        "--num-classes", "2", "--epochs", "1",
    )  # fmt: skip
    assert child["status"] == "succeeded", child
    assert child["spec"]["init_from"] == parent["model_id"]
    with embedded.api() as api:
        model = api.get(f"/v1/models/{child['model_id']}").json()
        parent_model = api.get(f"/v1/models/{parent['model_id']}").json()
    assert model["parent_model_id"] == parent["model_id"]
    (keras_file,) = [a for a in parent_model["artifacts"] if a["format"] == "keras"]
    assert model["parent_sha256"] == keras_file["sha256"]
    assert parent_model["parent_model_id"] is None

    hostile = dict(architecture)
    hostile["config"] = {**architecture["config"]}
    hostile["config"]["layers"] = [*architecture["config"]["layers"]]
    hostile["config"]["layers"].insert(2, layer("Lambda", "code", function="os.system"))
    path.write_text(json.dumps(hostile))
    refused = embedded.tass("submit", "train", "--architecture", str(path), "--data", "synthetic")
    assert refused.returncode != 0
    assert "layer 'code' of class 'Lambda'" in refused.stdout + refused.stderr
