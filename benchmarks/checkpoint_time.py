"""How long a preemption checkpoint takes against model size (docs/benchmarks.md).

    python benchmarks/checkpoint_time.py --widths 0.25,0.5,1,2,4 --out /tmp/checkpoint.json

For each `alexnet-cifar` width: the model with its optimizer state built (what a mid-epoch
checkpoint saves), timed through `write_step_checkpoint` (model.keras with optimizer slots, and
state.json), then uploaded to a local-folder object store with its sha256 (what the worker does
before handing the job back). The median of `--repeats` runs. S3 adds size / bandwidth.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine, write_json

from tass.contract.spec import TrainSpec
from tass.core.objectstore import ObjectStore
from tass.trainer.checkpoint import write_step_checkpoint
from tass.trainer.hardware import configure
from tass.trainer.models import build_model
from tass.trainer.train import compile_model


def measure(width: float, repeats: int, root: Path) -> dict[str, Any]:
    spec = TrainSpec.model_validate({"width": width, "jit_compile": "off"})
    hardware = configure(spec)
    model = compile_model(build_model(spec, 10), spec, 100, hardware)
    model.optimizer.build(model.trainable_variables)
    store = ObjectStore((root / "store").as_uri())
    writes, uploads, size = [], [], 0
    for i in range(repeats):
        started = time.perf_counter()
        folder = write_step_checkpoint(
            root / f"w{width}-{i}",
            epoch=0,
            step_in_epoch=1,
            global_step=1,
            model=model,
            state={"history": []},
        )
        writes.append(time.perf_counter() - started)
        size = sum(f.stat().st_size for f in folder.iterdir())
        started = time.perf_counter()
        for file in folder.iterdir():
            store.put_file(f"bench/w{width}-{i}/{file.name}", file)
        uploads.append(time.perf_counter() - started)
    return {
        "width": width,
        "parameters": int(model.count_params()),
        "checkpoint_mb": size / 1e6,
        "write_seconds": statistics.median(writes),
        "upload_local_seconds": statistics.median(uploads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="0.25,0.5,1,2,4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in (float(w) for w in args.widths.split(",")):
            row = measure(width, args.repeats, Path(tmp))
            rows.append(row)
            print(
                f"width {row['width']:<5} {row['parameters']:>11,} params "
                f"{row['checkpoint_mb']:8.1f} MB  write {row['write_seconds']:.3f}s  "
                f"upload(local) {row['upload_local_seconds']:.3f}s",
                flush=True,
            )
    write_json(args.out, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
