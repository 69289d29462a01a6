"""Where a training job's wall time goes outside the training steps (issue 32, item 2).

Two measurements, both of the issue's job (3 epochs, 2,000 synthetic images, the default model):

`phases`: the job's work in a fresh Python process, phase by phase, as a worker's job process
does it (import TensorFlow, import the trainer, load data, build and compile, first step,
training, flip validation, the two exports). Each phase is timed on its own in one process,
so their ratios are comparable even on a loaded machine.

`service`: the whole service (`tass up`: SQLite, local artifacts, a SQLite-backed queue) in a
scratch folder; two jobs submitted one after the other over HTTP and polled every 0.2 s:
queued -> running -> first step -> last step -> succeeded, with the phase the job reported.
The first job meets a freshly started worker, the second a warm one. It runs the service twice,
first with the job processes' warm-up off (`TASS_WORKER_PREWARM=false`: each job imports
TensorFlow after it went `running`), then on.

    python benchmarks/startup.py phases --out benchmarks/results/startup-phases.json
    python benchmarks/startup.py service --out benchmarks/results/startup-service.json
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, write_json

JOB = {"epochs": 3, "examples": 2000}


def phases() -> dict[str, float]:
    """Each phase of one job in this (fresh) process, in seconds."""
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 2)
        mark = now
        print(f"{name}: {timings[name]:.2f}s", flush=True)

    import tensorflow  # noqa: F401

    lap("import_tensorflow")
    from tass.contract.spec import DatasetSpec, TrainSpec
    from tass.trainer.data import load_dataset
    from tass.trainer.saving import export_model, export_savedmodel
    from tass.trainer.train import train

    lap("import_trainer")
    data = load_dataset(DatasetSpec(source="synthetic", num_examples=JOB["examples"]))
    lap("load_data")
    steps: list[float] = []

    def hook(progress: Any) -> bool:
        if progress.kind == "step":
            steps.append(time.perf_counter())
        return True

    start = mark
    result = train(TrainSpec(epochs=JOB["epochs"]), data, hook=hook, progress_every=1)
    end = time.perf_counter()
    timings["build_compile_first_step"] = round(steps[0] - start, 2)
    timings["training_after_first_step"] = round(steps[-1] - steps[0], 2)
    timings["after_last_step_flip_validation"] = round(end - steps[-1], 2)
    for name in ("build_compile_first_step", "training_after_first_step"):
        print(f"{name}: {timings[name]:.2f}s", flush=True)
    print(f"after_last_step_flip_validation: {timings['after_last_step_flip_validation']}s")
    mark = end
    with tempfile.TemporaryDirectory() as scratch:
        export_model(result.model, Path(scratch) / "model.keras", result.class_names)
        lap("export_keras")
        export_savedmodel(result.model, Path(scratch) / "savedmodel")
        shutil.make_archive(str(Path(scratch) / "savedmodel"), "zip", Path(scratch) / "savedmodel")
        lap("export_savedmodel_zip")
    return timings


def run_phases_in_fresh_process() -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "_phases"], capture_output=True, text=True, cwd=REPO, check=True
    )
    total = time.perf_counter() - started
    timings = dict(
        (name, float(value.rstrip("s")))
        for name, value in (line.split(": ") for line in out.stdout.splitlines() if ": " in line)
    )
    return {"timings_s": timings, "process_total_s": round(total, 2)}


def _poll(api: Any, job_id: str, timeout: float = 900) -> dict[str, Any]:
    """Seconds from submit to each event of the job, seen by polling its status."""
    t0 = time.perf_counter()
    seen: dict[str, float] = {"submitted": 0.0}
    phases_seen: list[str] = []
    while time.perf_counter() - t0 < timeout:
        job = api.get(f"/v1/jobs/{job_id}").json()
        now = round(time.perf_counter() - t0, 2)
        progress = job.get("progress") or {}
        phase = progress.get("phase")
        if phase and (not phases_seen or phases_seen[-1] != phase):
            phases_seen.append(phase)
            seen.setdefault(f"phase_{phase}", now)
        if job["status"] == "running":
            seen.setdefault("running", now)
        if progress.get("global_step"):
            seen.setdefault("first_step", now)
            if progress["global_step"] == progress["epochs"] * progress["steps_per_epoch"]:
                seen.setdefault("last_step", now)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            seen[job["status"]] = now
            break
        time.sleep(0.2)
    return {"events_s": seen, "phases": phases_seen}


def service() -> dict[str, Any]:
    """The service with the job processes' warm-up off, then on, one after the other."""
    return {
        "prewarm_off": _service_runs(prewarm=False),
        "prewarm_on": _service_runs(prewarm=True),
    }


def _service_runs(prewarm: bool) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.support.embedded import running_embedded

    runs = []
    setting = {"TASS_WORKER_PREWARM": "true" if prewarm else "false"}
    with (
        tempfile.TemporaryDirectory() as root,
        running_embedded(Path(root), **setting) as embedded,
    ):
        api = embedded.api()
        time.sleep(20)  # the worker settles (a pre-started job process imports TensorFlow)
        for label in ("first job", "second job (worker idle 20 s since the first)"):
            body = {
                "type": "train",
                "name": label,
                "dataset": {"source": "synthetic", "num_examples": JOB["examples"]},
                "spec": {"epochs": JOB["epochs"]},
            }
            answer = api.post("/v1/jobs", json=body)
            answer.raise_for_status()
            run = {"job": label, **_poll(api, answer.json()["id"])}
            events = run["events_s"]
            run["phase_seconds"] = _phase_seconds(events)
            if "running" in events and "first_step" in events:
                run["running_to_first_step_s"] = round(events["first_step"] - events["running"], 2)
            if "last_step" in events and "succeeded" in events:
                run["last_step_to_succeeded_s"] = round(
                    events["succeeded"] - events["last_step"], 2
                )
            print(run, flush=True)
            runs.append(run)
            time.sleep(20)  # idle: the next job's process starts (and warms up)
    return {"runs": runs}


def _phase_seconds(events: dict[str, float]) -> dict[str, float]:
    """How long each phase lasted: from its first sighting to the next phase (or the end)."""
    ends = ("succeeded", "failed", "cancelled")
    marks = sorted(
        (at, name) for name, at in events.items() if name.startswith("phase_") or name in ends
    )
    return {
        name.removeprefix("phase_"): round(end - at, 2)
        for (at, name), (end, _) in itertools.pairwise(marks)
        if name.startswith("phase_")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["phases", "service", "_phases"])
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.mode == "_phases":
        phases()
        return
    payload = run_phases_in_fresh_process() if args.mode == "phases" else service()
    payload["job"] = JOB
    print(payload, flush=True)
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
