"""Resume exactness, its bound across CPU instruction sets, and the cost of deterministic kernels.

    python benchmarks/resume.py --images 4000 --epochs 4 --out /tmp/resume.json

Every run is a fresh `python -m tass.trainer train` process on the same real CIFAR-10 images:
  1. the uninterrupted run, with a checkpoint per epoch;
  2. the run resumed from each epoch's checkpoint, same process settings: must be bitwise equal;
  3. "another machine": the run resumed from epoch 1 with oneDNN and XLA held to AVX2
     (`ONEDNN_MAX_CPU_ISA=AVX2`, `XLA_FLAGS=--xla_cpu_max_isa=AVX2`), and the whole run there;
  4. the spread between seeds, the yardstick for (3);
  5. `deterministic: true` against the default (runs before and after it), images/s of the
     epochs after the first (tracing excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import DEFAULT_ARCHIVE, REPO, machine, write_json

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def run_trainer(
    out: Path, args: argparse.Namespace, *extra: str, env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One trainer process; returns its history rows."""
    command = [
        sys.executable, "-m", "tass.trainer", "train",
        "--data", f"image-folder:{args.archive}", "--limit", str(args.images),
        "--width", str(args.width), "--epochs", str(args.epochs), "--out", str(out), *extra,
    ]  # fmt: skip
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    subprocess.run(command, cwd=REPO, env=environment, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "history.json").read_text())


def weight_difference(a: Path, b: Path) -> float:
    """The largest absolute difference between the weights of two model files."""
    import keras
    import numpy as np

    import tass.trainer.saving  # noqa: F401  (registers the custom objects)

    first = keras.saving.load_model(a / "model.keras", compile=False)
    second = keras.saving.load_model(b / "model.keras", compile=False)
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
        for x, y in zip(first.weights, second.weights, strict=True)
    )


def metric_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric: the absolute difference after the last epoch, and the largest over all."""
    return {
        key: {
            "final": abs(a[-1][key] - b[-1][key]),
            "max": max(abs(x[key] - y[key]) for x, y in zip(a, b, strict=True)),
        }
        for key in METRICS
    }


def throughput(history: list[dict[str, Any]]) -> float:
    return statistics.median(row["images_per_sec"] for row in history[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=3, help="seeds for the spread yardstick")
    parser.add_argument("--out")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tass-resume-"))
    base = run_trainer(work / "base", args)
    checkpoints = work / "base" / "checkpoints"
    report: dict[str, Any] = {"machine": machine(), "args": vars(args), "same_machine": {}}
    for epoch in range(1, args.epochs):
        out = work / f"resume-{epoch}"
        resumed = run_trainer(out, args, "--resume", str(checkpoints / f"epoch-{epoch:04d}"))
        report["same_machine"][f"from epoch {epoch}"] = {
            "metrics": metric_difference(base, resumed),
            "weights": weight_difference(work / "base", out),
        }
    resumed_avx2 = run_trainer(
        work / "avx2-resume", args, "--resume", str(checkpoints / "epoch-0001"), env=AVX2
    )
    whole_avx2 = run_trainer(work / "avx2", args, env=AVX2)
    report["avx2"] = {
        "resumed from epoch 1": metric_difference(base, resumed_avx2),
        "whole run": metric_difference(base, whole_avx2),
    }
    seeds = [base] + [
        run_trainer(work / f"seed-{seed}", args, "--seed", str(seed))
        for seed in range(1, args.seeds)
    ]
    report["seed_spread"] = {
        key: max(run[-1][key] for run in seeds) - min(run[-1][key] for run in seeds)
        for key in METRICS
    }
    deterministic = run_trainer(work / "deterministic", args, "--deterministic")
    again = run_trainer(work / "default-again", args)  # brackets the deterministic run in time
    default_speed = statistics.mean([throughput(base), throughput(again)])
    report["images_per_sec"] = {
        "default": default_speed,
        "deterministic": throughput(deterministic),
        "ratio": throughput(deterministic) / default_speed,
    }
    report["deterministic_equals_default"] = metric_difference(base, deterministic)
    print(json.dumps(report, indent=2))
    write_json(args.out, report)


if __name__ == "__main__":
    main()
