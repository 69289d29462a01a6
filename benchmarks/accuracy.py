"""Validation accuracy against wall time on the real CIFAR-10 training split (45k/5k).

    python benchmarks/accuracy.py --recipe default --minutes 30 --out /tmp/acc-default.json
    python benchmarks/accuracy.py --recipe textbook --minutes 10 --out /tmp/acc-textbook.json

`default` trains alexnet-cifar with the TrainSpec defaults through trainer.train (flags such as
--epochs or --width override them); `textbook` runs the issue's plain Keras recipe on the same
45,000/5,000 stratified split, stopped after --minutes of training.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import DEFAULT_ARCHIVE, load_real, machine, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=["default", "textbook"], default="default")
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE)
    parser.add_argument("--minutes", type=float, default=30.0, help="training time budget")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="use N images (smoke tests)")
    parser.add_argument("--profile", default=None, help="start from contract.spec.PROFILES[...]")
    parser.add_argument(
        "--validate-every", type=int, default=None, help="textbook: validate every N steps"
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()

    from tass.contract.spec import TrainSpec, profile_fields
    from tass.trainer.data import stratified_split

    data = load_real(args.archive, args.limit)
    overrides = {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "width": args.width,
            "batch_size": args.batch_size,
            "seed": args.seed,
        }.items()
        if v is not None
    }
    spec = TrainSpec.model_validate(profile_fields(args.profile, overrides))
    result: dict[str, Any] = {"recipe": args.recipe, "machine": machine(), "minutes": args.minutes}
    start = time.perf_counter()
    if args.recipe == "textbook":
        from textbook import run_textbook

        fit_split, val_split = stratified_split(data, 0.1, spec.seed)
        result["rows"] = run_textbook(
            fit_split.x,
            fit_split.y,
            val_split.x,
            val_split.y,
            epochs=args.epochs or 10,
            max_seconds=args.minutes * 60,
            validate_every=args.validate_every,
        )
    else:
        from tass.trainer.train import train

        result["spec"] = spec.model_dump(mode="json")
        budget = args.minutes * 60

        def hook(progress: Any) -> bool:
            return time.perf_counter() - start < budget  # stop when the budget is spent

        def log(line: str) -> None:
            print(f"[{time.perf_counter() - start:7.1f}s] {line}", flush=True)

        out = train(spec, data, hook=hook, progress_every=20, log=log)
        elapsed = 0.0
        for row in out.history:
            elapsed += row["epoch_seconds"]
            row["elapsed_seconds"] = elapsed
        result["rows"] = out.history
        result["stopped_by_budget"] = out.stopped
        result["final_val_accuracy_flip"] = out.final_metrics.get("val_accuracy_flip")
    result["total_seconds"] = time.perf_counter() - start
    best = max((r.get("val_accuracy") or 0.0 for r in result["rows"]), default=0.0)
    result["best_val_accuracy"] = best
    flipped = result.get("final_val_accuracy_flip")
    with_flip = f"; at the end with test-time flips {flipped:.4f}" if flipped else ""
    print(f"best val_accuracy {best:.4f} in {result['total_seconds']:.0f}s{with_flip}", flush=True)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
