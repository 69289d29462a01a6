"""`tass submit`: the request body built from flags and spec files, and how errors are shown."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from client_fakes import make_job, running


def accept(job_id: str = "job-1", **fields: object) -> httpx.Response:
    return httpx.Response(
        202, json=make_job(id=job_id, **fields), headers={"Location": f"/v1/jobs/{job_id}"}
    )


def test_flags_build_the_train_body_and_the_id_is_printed(api, run):
    api.route("POST", "/v1/jobs", accept("j-42"))

    result = run(
        "submit", "train", "--data", "synthetic:500", "--epochs", "3", "--batch-size", "64",
        "--learning-rate", "0.01", "--optimizer", "sgd", "--no-nesterov", "--schedule", "cosine",
        "--translate", "0.1", "--no-horizontal-flip", "--split", "test", "--limit", "100",
        "--name", "first", "--tag", "team=vision", "--tag", "run=1",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "j-42"  # only the id on stdout: JOB=$(tass submit ...)
    assert api.bodies("POST", "/v1/jobs") == [
        {
            "type": "train",
            "spec": {
                "epochs": 3,
                "batch_size": 64,
                "learning_rate": 0.01,
                "optimizer": "sgd",
                "nesterov": False,
                "schedule": "cosine",
                "augmentation": {"horizontal_flip": False, "translate": 0.1},
            },
            "dataset": {"source": "synthetic", "num_examples": 500, "split": "test", "limit": 100},
            "name": "first",
            "tags": {"team": "vision", "run": "1"},
        }
    ]


def test_unset_flags_are_left_to_the_server_defaults(api, run):
    api.route("POST", "/v1/jobs", accept())

    assert run("submit", "train", "--data", "cifar10").exit_code == 0

    assert api.bodies("POST", "/v1/jobs") == [
        {"type": "train", "spec": {}, "dataset": {"source": "cifar10"}, "name": None, "tags": {}}
    ]


def test_data_forms(api, run):
    api.route("POST", "/v1/jobs", accept())
    for value in ("synthetic", "cifar10-python:/data/cifar-10-batches-py", "image-folder:pets"):
        assert run("submit", "train", "--data", value).exit_code == 0

    datasets = [body["dataset"] for body in api.bodies("POST", "/v1/jobs")]
    assert datasets == [
        {"source": "synthetic"},
        {"source": "cifar10-python", "path": "/data/cifar-10-batches-py"},
        {"source": "image-folder", "path": "pets"},  # a server-side path, sent as given
    ]


def test_yaml_spec_file_with_flags_overriding_it(api, run, tmp_path: Path):
    spec = tmp_path / "run.yaml"
    spec.write_text(
        "epochs: 20\n"
        "learning_rate: 1e-3\n"  # a float (PyYAML's YAML 1.1 would read a string)
        "jit_compile: off\n"  # stays the string "off" (YAML 1.1 would read False)
        "augmentation:\n  translate: 0.2\n  crop_padding: 2\n"
    )
    api.route("POST", "/v1/jobs", accept())

    result = run(
        "submit", "train", "--spec", str(spec), "--data", "synthetic", "--epochs", "5",
        "--crop-padding", "0",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    (body,) = api.bodies("POST", "/v1/jobs")
    assert body["spec"] == {
        "epochs": 5,
        "learning_rate": 0.001,
        "jit_compile": "off",
        "augmentation": {"translate": 0.2, "crop_padding": 0},
    }


def test_json_job_file_supplies_dataset_name_and_tags(api, run, tmp_path: Path):
    spec = tmp_path / "job.json"
    document = {
        "spec": {"model": "alexnet-seed", "epochs": 2},
        "dataset": {"source": "image-folder", "path": "flowers", "split": "train"},
        "name": "from-file",
        "tags": {"a": "1", "b": "2"},
    }
    spec.write_text(json.dumps(document))
    api.route("POST", "/v1/jobs", accept())

    result = run("submit", "train", "--spec", str(spec), "--tag", "b=3", "--set", "seed=7")

    assert result.exit_code == 0, result.output
    (body,) = api.bodies("POST", "/v1/jobs")
    assert body == {
        "type": "train",
        "spec": {"model": "alexnet-seed", "epochs": 2, "seed": 7},
        "dataset": {"source": "image-folder", "path": "flowers", "split": "train"},
        "name": "from-file",
        "tags": {"a": "1", "b": "3"},
    }


def test_set_reaches_any_field_with_json_or_string_values(api, run):
    api.route("POST", "/v1/jobs", accept())

    result = run(
        "submit", "train", "--data", "synthetic", "--set", "augmentation.translate=0.25",
        "--set", "early_stopping_patience=null", "--set", "mixed_precision=on",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    (body,) = api.bodies("POST", "/v1/jobs")
    assert body["spec"] == {
        "augmentation": {"translate": 0.25},
        "early_stopping_patience": None,
        "mixed_precision": "on",
    }


def test_validation_error_names_the_field_without_a_traceback(api, run):
    detail = [
        {
            "loc": ["body", "train", "spec", "epochs"],
            "msg": "Input should be less than or equal to 500",
            "type": "less_than_equal",
        }
    ]
    api.route("POST", "/v1/jobs", httpx.Response(422, json={"detail": detail}))

    result = run("submit", "train", "--data", "synthetic", "--epochs", "9999")

    assert result.exit_code == 1
    assert "spec.epochs: Input should be less than or equal to 500" in result.stderr
    assert "422" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_string_detail_is_shown(api, run):
    message = "the job queue is unavailable; the job was not queued"
    api.route("POST", "/v1/jobs", httpx.Response(503, json={"detail": message}))

    result = run("submit", "train", "--data", "synthetic")

    assert result.exit_code == 1
    assert message in result.stderr


def test_missing_data_is_a_usage_error_before_any_request(api, run):
    result = run("submit", "train", "--epochs", "3")

    assert result.exit_code == 2
    assert "--data" in result.stderr
    assert api.requests == []


def test_bad_data_and_tag_values_are_usage_errors(api, run):
    assert run("submit", "train", "--data", "synthetic:many").exit_code == 2
    assert run("submit", "train", "--data", "image-folder:").exit_code == 2
    assert run("submit", "train", "--data", "synthetic", "--tag", "novalue").exit_code == 2
    assert api.requests == []


def test_invalid_yaml_spec_is_a_usage_error(api, run, tmp_path: Path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("epochs: [1, 2\n")

    result = run("submit", "train", "--spec", str(spec), "--data", "synthetic")

    assert result.exit_code == 2
    assert "bad.yaml is not valid YAML" in result.stderr
    assert "Traceback" not in result.output


def test_evaluate_body(api, run):
    api.route("POST", "/v1/jobs", accept("j-eval", type="evaluate"))

    result = run(
        "submit", "evaluate", "m-7", "--data", "cifar10-python:/data/c10", "--split", "test",
        "--name", "eval",
    )  # fmt: skip
    flipped = run("submit", "evaluate", "m-7", "--data", "cifar10", "--flip")

    assert result.exit_code == 0, result.output
    assert flipped.exit_code == 0, flipped.output
    assert result.stdout.strip() == "j-eval"
    assert api.bodies("POST", "/v1/jobs") == [
        {
            "type": "evaluate",
            "model_id": "m-7",
            "dataset": {"source": "cifar10-python", "path": "/data/c10", "split": "test"},
            "name": "eval",
            "tags": {},
            "test_time_flip": False,
        },
        {
            "type": "evaluate",
            "model_id": "m-7",
            "dataset": {"source": "cifar10"},
            "name": None,
            "tags": {},
            "test_time_flip": True,
        },
    ]


def test_json_output_is_the_job(api, run):
    api.route("POST", "/v1/jobs", accept("j-9"))

    result = run("submit", "train", "--data", "synthetic", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout)["id"] == "j-9"


def test_wait_watches_to_the_end_and_exits_by_the_outcome(api, run):
    api.route("POST", "/v1/jobs", accept("job-1"))
    api.sequence(
        "GET",
        "/v1/jobs/job-1",
        [
            httpx.Response(200, json=running(1, 5)),
            httpx.Response(200, json=make_job(status="failed", error="out of memory")),
        ],
    )

    result = run("submit", "train", "--data", "synthetic", "--wait", "--interval", "0")

    assert result.exit_code == 1
    assert "out of memory" in result.stdout


def test_every_trainspec_field_is_a_flag_in_both_command_lines(capsys):
    """`tass submit train` and `python -m tass.trainer train` generate their hyperparameter flags
    from TrainSpec: a field added there is a flag in both, with its description as help."""
    from typer.testing import CliRunner

    from tass.client.cli import app
    from tass.contract.spec import Augmentation, TrainSpec
    from tass.trainer.cli import make_parser

    # tracking (where the job's MLflow run goes) is no hyperparameter: spec files set it
    fields = {*TrainSpec.model_fields, *Augmentation.model_fields} - {"augmentation", "tracking"}
    flags = {"--" + name.replace("_", "-") for name in fields}
    with pytest.raises(SystemExit):
        make_parser().parse_args(["train", "--help"])
    trainer_help = capsys.readouterr().out

    # wide enough that rich does not shorten the longer flag names
    result = CliRunner().invoke(app, ["submit", "train", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    help_text = result.stdout.replace("\n", " ")
    for flag in flags:
        assert flag in help_text, f"tass submit train has no {flag}"
        assert flag in trainer_help, f"python -m tass.trainer train has no {flag}"
    assert TrainSpec.model_fields["label_smoothing"].description in help_text


def test_generated_flags_reach_the_spec_including_the_newer_fields(api, run):
    api.route("POST", "/v1/jobs", accept())

    result = run(
        "submit", "train", "--data", "synthetic", "--lr", "0.05", "--deterministic",
        "--max-runtime-seconds", "600", "--mixed-precision", "off", "--crop-padding", "4",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    (body,) = api.bodies("POST", "/v1/jobs")
    assert body["spec"] == {
        "learning_rate": 0.05,
        "deterministic": True,
        "max_runtime_seconds": 600,
        "mixed_precision": "off",
        "augmentation": {"crop_padding": 4},
    }
