"""`python -m tass.trainer` end to end in a subprocess, and its error handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def run_cli(*args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "tass.trainer", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_train_then_evaluate_on_synthetic_data(tmp_path: Path) -> None:
    out = tmp_path / "run"
    spec_file = tmp_path / "spec.json"
    # without XLA, which compiles for ~8 s per run on 2 cores (the embedded sweep trains with it)
    spec = {"width": 0.5, "batch_size": 64, "epochs": 5, "jit_compile": "off"}
    spec_file.write_text(json.dumps(spec))
    trained = run_cli(
        "train",
        "--data",
        "synthetic:400",
        "--model",
        "alexnet-cifar",
        "--epochs",
        "2",
        "--spec",
        str(spec_file),
        "--out",
        str(out),
        "--no-horizontal-flip",
        "--batch-size",
        "32",
    )
    assert trained.returncode == 0, trained.stderr
    epoch_lines = [line for line in trained.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]  # --epochs beats --spec
    assert all("val_accuracy" in line and "eta" in line for line in epoch_lines)
    history = json.loads((out / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    run = json.loads((out / "run.json").read_text())
    assert run["spec"]["width"] == 0.5 and run["spec"]["batch_size"] == 32
    assert run["spec"]["augmentation"]["horizontal_flip"] is False
    # What the numbers depend on beyond the spec travels with them.
    import tensorflow as tf

    assert run["environment"]["tensorflow"] == tf.__version__ and run["environment"]["cpu"]
    assert run["training_flops_per_image"] > 0
    assert (out / "model.keras").is_file() and (out / "checkpoints" / "epoch-0002").is_dir()

    evaluated = run_cli(
        "evaluate", "--model-file", str(out / "model.keras"), "--data", "synthetic:200", "--json"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    assert metrics["num_examples"] == 200 and metrics["accuracy"] > 0.2  # chance is 0.1
    assert sum(map(sum, metrics["confusion_matrix"])) == 200

    resumed = run_cli(
        "train",
        "--data",
        "synthetic:400",
        "--spec",
        str(spec_file),
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--no-horizontal-flip",
        "--out",
        str(out),
        "--resume",
        str(out / "checkpoints"),
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [ln.split()[1] for ln in resumed.stdout.splitlines() if ln.startswith("epoch ")] == [
        "3/3"
    ]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--batch-size", "0"], "batch_size"),
        (["--learning-rate", "fast"], "learning_rate"),
        (["--crop-padding", "99"], "augmentation.crop_padding"),
        (["--model", "vgg"], "model"),
    ],
)
def test_invalid_spec_values_exit_2_naming_the_field(
    args: list[str], field: str, tmp_path: Path
) -> None:
    result = run_cli("train", "--data", "synthetic:100", "--out", str(tmp_path), *args, timeout=60)
    assert result.returncode == 2
    assert f"{field}:" in result.stderr and "Traceback" not in result.stderr


def test_missing_data_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.tar.gz"
    result = run_cli(
        "train", "--data", f"image-folder:{missing}", "--out", str(tmp_path), timeout=60
    )
    assert result.returncode == 1
    assert str(missing) in result.stderr and "Traceback" not in result.stderr


def test_flags_reach_the_strict_spec_as_their_fields_types() -> None:
    """The spec refuses "0.05" for a float; the command line's text flags are converted first."""
    from tass.trainer.cli import build_spec, make_parser, parse_data

    flags = "--learning-rate 0.05 --epochs 2 --width 1 --translate 0.1 --no-nesterov"
    args = make_parser().parse_args(
        ["train", "--data", "synthetic:100", "--out", "x", *flags.split()]
    )
    spec = build_spec(args)
    assert (spec.learning_rate, spec.epochs, spec.width) == (0.05, 2, 1.0)
    assert (spec.augmentation.translate, spec.nesterov) == (0.1, False)
    assert parse_data("synthetic:100", "train", None).num_examples == 100
