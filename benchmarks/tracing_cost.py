"""What the OpenTelemetry and MLflow hooks cost when they are off (and, for scale, on).

Two measurements, each as ratios against a baseline taken in the same run:

1. Requests through the app in-process (FastAPI TestClient, SQLite, in-memory broker): the
   median latency of `POST /v1/jobs` (submit, which publishes a task) and `GET /v1/jobs/{id}`
   (poll) with TASS_OPENTELEMETRY off and on (an SDK tracer provider recording every span in
   memory), in alternating rounds. Off, the app connects nothing (a settings check when it is
   built), so "off" is also the baseline with the hooks absent.
2. The trainer's per-step hook (called after every training step and epoch, worker/train_job.py):
   the reporter alone (hooks absent) against it wrapped by the MLflow and OpenTelemetry hooks
   off (`JobTracking().wrap`, `epoch_spans(..., False)`) and on (an MLflow run in a local SQLite
   store, epoch spans recorded in memory): nanoseconds per call, and a short Keras fit's
   seconds per step with each hook, configurations interleaved.

    python benchmarks/tracing_cost.py --out benchmarks/results/tracing_cost.json
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from common import machine, write_json

Hook = Callable[[Any], bool]


def recording_provider() -> Any:
    """An SDK tracer provider that keeps every span in memory, installed once per process (the
    global provider cannot be replaced); its exporter."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    global _EXPORTER
    if _EXPORTER is None:
        _EXPORTER = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


_EXPORTER: Any = None


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def api_client(settings: Any) -> Any:
    """A started TestClient of a fresh app on `settings`, speaking as a new tenant's key."""
    from fastapi.testclient import TestClient

    from tass.api.app import create_app
    from tass.core.apikeys import create_key
    from tass.core.db import make_engine, make_session_factory

    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        _, key = create_key(session, "bench")
        session.commit()
    engine.dispose()
    client = TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"})
    client.__enter__()
    return client


def submit_and_poll(client: Any, submit: list[float], poll: list[float]) -> None:
    body = {"type": "train", "spec": {"epochs": 1}, "dataset": {"source": "synthetic"}}
    start = time.perf_counter()
    job = client.post("/v1/jobs", json=body)
    submit.append(time.perf_counter() - start)
    assert job.status_code == 202, job.text
    start = time.perf_counter()
    assert client.get(f"/v1/jobs/{job.json()['id']}").status_code == 200
    poll.append(time.perf_counter() - start)


def measure_requests(requests: int, rounds: int = 10) -> dict[str, Any]:
    """Both apps built up front, then rounds that alternate them. The publish hook is a
    process-wide Celery signal: it is connected only during the `on` app's rounds."""
    from tass.core.settings import Settings
    from tass.core.tracing import stop_tracing_task_publishing, trace_task_publishing
    from tass.migrations.runner import upgrade

    def settings(folder: str, opentelemetry: bool) -> Settings:
        made = Settings(
            data_dir=Path(folder),
            broker_url="memory://",
            allowed_hosts=["testserver"],
            opentelemetry=opentelemetry,
            max_active_jobs_per_tenant=100_000,  # nothing runs the submitted jobs here
        )
        upgrade(made.resolved_database_url)
        return made

    exporter = recording_provider()
    samples: dict[str, tuple[list[float], list[float]]] = {"off": ([], []), "on": ([], [])}
    with tempfile.TemporaryDirectory() as off_dir, tempfile.TemporaryDirectory() as on_dir:
        clients = {"off": api_client(settings(off_dir, False))}
        clients["on"] = api_client(settings(on_dir, True))
        stop_tracing_task_publishing()
        for client in clients.values():  # warm-up
            for _ in range(5):
                submit_and_poll(client, [], [])
        exporter.clear()
        per_round = max(1, requests // rounds)
        for _ in range(rounds):
            for name, client in clients.items():
                if name == "on":
                    trace_task_publishing()
                for _ in range(per_round):
                    submit_and_poll(client, *samples[name])
                stop_tracing_task_publishing()
        spans = len(exporter.get_finished_spans())
        for client in clients.values():
            client.__exit__(None, None, None)
    medians = {
        name: {"submit_ms": median_ms(submit), "poll_ms": median_ms(poll)}
        for name, (submit, poll) in samples.items()
    }
    return {
        "requests_per_config": per_round * rounds,
        "median_ms": medians,
        "spans_recorded_on": spans,
        "ratio_on_to_off": {k: medians["on"][k] / medians["off"][k] for k in medians["off"]},
    }


class Reporter:
    """Stands in for the worker's JobReporter: counts what it is told."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, progress: Any) -> bool:
        self.calls += 1
        return True


def hooks(mlflow_dir: str) -> dict[str, Callable[[], Hook]]:
    """Each configuration's hook factory: absent, off, on."""
    from tass.worker.mlflow_tracking import JobTracking
    from tass.worker.tracing import epoch_spans

    recording_provider()

    def on() -> Hook:
        from mlflow.tracking import MlflowClient

        uri = f"sqlite:///{mlflow_dir}/mlflow.db"
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name("bench") or None
        experiment_id = (
            experiment.experiment_id if experiment else client.create_experiment("bench")
        )
        run = client.create_run(experiment_id)
        tracking = JobTracking(client, run.info.run_id, uri)
        return epoch_spans(tracking.wrap(Reporter()), True)

    return {
        "absent": Reporter,
        "off": lambda: epoch_spans(JobTracking().wrap(Reporter()), False),
        "on": on,
    }


def ns_per_step_call(hook: Hook, calls: int) -> float:
    step = SimpleNamespace(kind="step", epoch=1, metrics={"loss": 1.0})
    start = time.perf_counter_ns()
    for _ in range(calls):
        hook(step)
    return (time.perf_counter_ns() - start) / calls


def fit_seconds_per_step(hook: Hook, steps_per_epoch: int) -> float:
    """Median time from one training step's hook call to the next in a short Keras fit (the
    step and the hooks between; epoch ends, with their validation, fall outside the median)."""
    from tass.contract.spec import TrainSpec
    from tass.trainer.data.synthetic import synthetic_dataset
    from tass.trainer.train import train

    spec = TrainSpec.model_validate(
        {"epochs": 2, "width": 0.125, "batch_size": 32, "jit_compile": "off"}
    )
    data = synthetic_dataset(int(steps_per_epoch * 32 / 0.9), 10, "train", seed=0)
    stamps: list[float] = []

    def timed(progress: Any) -> bool:
        if progress.kind == "step":
            stamps.append(time.perf_counter())
        return hook(progress)

    train(spec, data, hook=timed, progress_every=1)
    return statistics.median(b - a for a, b in itertools.pairwise(stamps))


def measure_steps(calls: int, fits: int, steps_per_epoch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as mlflow_dir:
        factories = hooks(mlflow_dir)
        made = {name: make() for name, make in factories.items()}
        call_samples: dict[str, list[float]] = {name: [] for name in made}
        for _ in range(9):  # interleaved rounds: load on a shared machine hits all alike
            for name, hook in made.items():
                call_samples[name].append(ns_per_step_call(hook, calls))
        call_ns = {name: statistics.median(values) for name, values in call_samples.items()}
        fit_seconds: dict[str, list[float]] = {name: [] for name in factories}
        fit_seconds_per_step(factories["absent"](), steps_per_epoch)  # warm-up (tracing, data)
        names = list(factories)
        for round_number in range(fits):  # interleaved, each round in a rotated order
            for name in names[round_number % 3 :] + names[: round_number % 3]:
                fit_seconds[name].append(fit_seconds_per_step(factories[name](), steps_per_epoch))
    fit = {name: statistics.median(values) for name, values in fit_seconds.items()}
    return {
        "hook_ns_per_step_call": call_ns,
        "hook_call_ratio_to_absent": {k: v / call_ns["absent"] for k, v in call_ns.items()},
        "fit_seconds_per_step": fit,
        "fit_step_ratio_to_absent": {k: v / fit["absent"] for k, v in fit.items()},
        "fits_per_config": fits,
        "steps_per_fit": 2 * steps_per_epoch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    started = time.perf_counter()
    steps = measure_steps(args.calls, args.fits, args.steps_per_epoch)
    print("trainer hooks:", steps, flush=True)
    requests = measure_requests(args.requests)
    print("requests:", requests, flush=True)
    write_json(
        args.out,
        {
            "machine": machine(),
            "trainer_hooks": steps,
            "requests": requests,
            "seconds": time.perf_counter() - started,
        },
    )


if __name__ == "__main__":
    main()
