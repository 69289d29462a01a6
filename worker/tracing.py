"""The worker's side of the trace (TASS_OPENTELEMETRY=true, core/tracing.py): Celery's
OpenTelemetry instrumentation continues the publisher's trace in each pool process (a
`run/<task>` span whose parent comes from the message headers), a span for the job inside it,
and one per epoch inside that, with the epoch's metrics as attributes. Off, nothing is
imported and the job runs exactly as without tracing."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from celery.signals import worker_process_init

from tass.core.settings import get_settings


def instrument_celery(tracer_provider: Any = None) -> None:
    """Celery's OpenTelemetry instrumentation in this process (a no-op if already done)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider)


@worker_process_init.connect
def _instrument_pool_process(**_: object) -> None:
    if get_settings().opentelemetry:
        instrument_celery()


@contextlib.contextmanager
def job_span(kind: str, job_id: str) -> Iterator[None]:
    """A span for the job while the task runs it (child of the task's span)."""
    if not get_settings().opentelemetry:
        yield
        return
    from opentelemetry import trace

    tracer = trace.get_tracer("tass.worker")
    with tracer.start_as_current_span(f"tass.{kind}_job", attributes={"tass.job_id": job_id}):
        yield


def epoch_spans(hook: Callable[[Any], bool], enabled: bool) -> Callable[[Any], bool]:
    """The trainer hook, plus a span per finished epoch (from the previous epoch's end)."""
    if not enabled:
        return hook
    from opentelemetry import trace

    tracer = trace.get_tracer("tass.worker")
    started = [time.time_ns()]

    def traced(progress: Any) -> bool:
        keep_going = hook(progress)
        if progress.kind == "epoch":
            now = time.time_ns()
            attributes: dict[str, int | float] = {"tass.epoch": int(progress.epoch)}
            attributes |= {
                f"tass.metric.{name}": float(value)
                for name, value in progress.metrics.items()
                if isinstance(value, (int, float))
            }
            span = tracer.start_span(
                f"epoch {progress.epoch}", start_time=started[0], attributes=attributes
            )
            span.end(end_time=now)
            started[0] = now
        return keep_going

    return traced
