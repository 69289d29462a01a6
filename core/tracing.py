"""OpenTelemetry traces that cross the broker (TASS_OPENTELEMETRY=true): a span for each task
the process publishes, whose context travels in the task's message headers (W3C
`traceparent`), so the worker's Celery instrumentation continues the request's trace.

Nothing here is imported or connected while the setting is off: the status-poll path and the
worker pay nothing. Spans go to the tracer provider the process configures (for example under
`opentelemetry-instrument`); with none, OpenTelemetry's no-op provider drops them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

PUBLISH_UID = "tass-otel-publish"


def _traced_publish(
    sender: str | None = None, headers: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    from opentelemetry import propagate, trace

    tracer = trace.get_tracer("tass")
    attributes = {
        "messaging.system": "celery",
        "celery.task_name": str(sender),
        "messaging.message.id": str((headers or {}).get("id", "")),
        "messaging.destination.name": str(kwargs.get("routing_key") or ""),
    }
    with tracer.start_as_current_span(
        f"publish {sender}", kind=trace.SpanKind.PRODUCER, attributes=attributes
    ):
        if headers is not None:
            propagate.inject(headers)


def trace_task_publishing() -> None:
    """Publish spans and context propagation for every task this process sends (idempotent)."""
    from celery.signals import before_task_publish

    before_task_publish.connect(_traced_publish, weak=False, dispatch_uid=PUBLISH_UID)


def stop_tracing_task_publishing() -> None:
    from celery.signals import before_task_publish

    before_task_publish.disconnect(dispatch_uid=PUBLISH_UID)


def current_trace_context() -> dict[str, str] | None:
    """The current span's context as W3C headers (`traceparent`), to keep with a job whose
    task is published later by another process (the scheduler); None outside any span."""
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


@contextlib.contextmanager
def continued_trace(carrier: dict[str, Any] | None) -> Iterator[None]:
    """Inside the trace `carrier` names (from `current_trace_context`): a task published here
    joins the request that submitted its job."""
    if not carrier:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)
