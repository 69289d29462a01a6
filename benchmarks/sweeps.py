"""ASHA against running every trial to completion, on a CIFAR-10 subset.

    python benchmarks/sweeps.py --images 5000 --trials 16 --epochs 6 --width 0.25 \
        --out benchmarks/results/sweeps.json

The trials' parameters (learning rate, weight decay, dropout) come from the service's own
decision code (`core.sweep_decisions.decide`, Optuna's RandomSampler), so both runs train the
same trials. The data is loaded once; trials run one after another in this process (the
machine has 2 cores: `max_parallel` 1).

1. ASHA: after every epoch the service's decision code is asked, exactly as housekeeping asks
   it, with every trial's epochs so far; a trial it stops ends after that epoch.
2. Full: every trial runs all epochs.

Reported: best validation accuracy (at the last epoch of a trial that ran to the end) in each
run, and the epochs each run trained.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from typing import Any

from common import DEFAULT_ARCHIVE, load_real, machine, write_json

from tass.core.sweep_decisions import EpochValue, TrialRecord, decide


def sweep_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "method": "random",
        "parameters": {
            "learning_rate": {"distribution": "log_uniform", "min": 0.01, "max": 0.5},
            "weight_decay": {"distribution": "log_uniform", "min": 1e-5, "max": 1e-2},
            "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
        },
        "objective": {"metric": "val_accuracy", "goal": "maximize"},
        "max_trials": args.trials,
        "max_parallel": args.trials,
        "early_stopping": {"type": "asha", "min_epochs": 1, "reduction_factor": args.eta},
    }


def run_trial(
    number: int, params: dict[str, Any], data: Any, args: argparse.Namespace, should_stop: Any
) -> list[EpochValue]:
    """Train one trial; `should_stop(curve)` after each epoch may end it."""
    from tass.contract.spec import TrainSpec
    from tass.trainer.train import train

    spec = TrainSpec(width=args.width, epochs=args.epochs, **params)
    curve: list[EpochValue] = []

    def hook(progress: Any) -> bool:
        if progress.kind != "epoch":
            return True
        value = float(progress.metrics["val_accuracy"])
        curve.append(EpochValue(progress.epoch, value, datetime.now(timezone.utc)))
        return not should_stop(curve)

    start = time.perf_counter()
    train(spec, data, hook=hook, progress_every=10_000)
    values = " ".join(f"{p.value:.3f}" for p in curve)
    print(f"trial {number} {params} -> {values} ({time.perf_counter() - start:.0f}s)", flush=True)
    return curve


def record(number: int, params: dict, curve: list[EpochValue], status: str) -> TrialRecord:
    return TrialRecord(
        number=number,
        job_id=f"trial-{number}",
        params=params,
        status=status,
        epochs=tuple(curve),
        finished_at=curve[-1].at if status != "running" and curve else None,
        model_id=f"model-{number}" if status == "succeeded" else None,
    )


def asha_run(config: dict, trials: list[dict], data: Any, args: argparse.Namespace) -> dict:
    done: list[TrialRecord] = []
    for number, params in enumerate(trials):

        def should_stop(
            curve: list[EpochValue], number: int = number, params: dict = params
        ) -> bool:
            running = record(number, params, curve, "running")
            decision = decide(config, [*done, running], free_quota=0, seed=0)
            return running.job_id in decision.stop

        curve = run_trial(number, params, data, args, should_stop)
        stopped = len(curve) < args.epochs
        status = "cancelled" if stopped else "succeeded"
        done.append(record(number, params, curve, status))
    return summary(done, config)


def full_run(config: dict, trials: list[dict], data: Any, args: argparse.Namespace) -> dict:
    done = [
        record(number, params, run_trial(number, params, data, args, lambda _: False), "succeeded")
        for number, params in enumerate(trials)
    ]
    return summary(done, config)


def summary(done: list[TrialRecord], config: dict) -> dict:
    best = decide(config, done, free_quota=0, seed=0).best
    return {
        "best_val_accuracy": best["value"] if best else None,
        "best_trial": best["number"] if best else None,
        "epochs_trained": sum(len(t.epochs) for t in done),
        "trials": [
            {"number": t.number, "params": t.params, "curve": [p.value for p in t.epochs]}
            for t in done
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()

    config = sweep_config(args)
    trials = [
        params for _, params in decide(config, [], free_quota=args.trials, seed=args.seed).start
    ]
    data = load_real(args.archive, args.images)
    start = time.perf_counter()
    asha = asha_run(config, trials, data, args)
    asha_seconds = time.perf_counter() - start
    full = full_run(config, trials, data, args)
    result: dict[str, Any] = {
        "args": vars(args),
        "machine": machine(),
        "asha": {**asha, "seconds": asha_seconds},
        "full": {**full, "seconds": time.perf_counter() - start - asha_seconds},
    }
    result["epoch_fraction"] = asha["epochs_trained"] / full["epochs_trained"]
    result["accuracy_gap_points"] = 100 * (full["best_val_accuracy"] - asha["best_val_accuracy"])
    print(
        f"ASHA best {asha['best_val_accuracy']:.4f} with {asha['epochs_trained']} epochs; "
        f"full best {full['best_val_accuracy']:.4f} with {full['epochs_trained']} epochs; "
        f"gap {result['accuracy_gap_points']:.2f} points, "
        f"{100 * result['epoch_fraction']:.0f}% of the epochs",
        flush=True,
    )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
