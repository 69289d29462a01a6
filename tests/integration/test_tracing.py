"""One trace from POST /v1/jobs through the broker into the worker's job and its epochs
(TASS_OPENTELEMETRY=true), recorded by the SDK's in-memory exporter: the API app in-process,
the task's message taken from the broker and its body run as a worker runs it, with the
message's headers as the task's request."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.app.trace import build_tracer
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tass.core.apikeys import create_key
from tass.core.db import make_engine, make_session_factory
from tass.core.queue import TRAIN_TASK, node_queue
from tass.core.settings import Settings, get_settings
from tass.core.tracing import stop_tracing_task_publishing
from tass.core.workers import WorkerInfo, report_alive
from tass.migrations.runner import upgrade
from tass.worker.scheduler import Scheduler

pytestmark = pytest.mark.integration

SPEC = {
    "epochs": 2,
    "width": 0.125,
    "batch_size": 32,
    "jit_compile": "off",
    "validation_split": 0.2,
}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    # OpenTelemetry lets a process set its global provider once, and an earlier test in the same
    # process may have (importing mlflow sets one up for its own tracing): start from none, as
    # OpenTelemetry's own test utilities (reset_trace_globals) do
    trace._TRACER_PROVIDER_SET_ONCE = trace.Once()
    trace._TRACER_PROVIDER = None
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider
    yield memory
    memory.clear()


@pytest.fixture
def traced_service(tmp_path, monkeypatch, exporter):
    monkeypatch.setenv("TASS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TASS_BROKER_URL", "memory://")
    monkeypatch.setenv("TASS_OPENTELEMETRY", "true")
    monkeypatch.setenv("TASS_ALLOWED_HOSTS", "testserver")  # TestClient's Host
    get_settings.cache_clear()
    monkeypatch.setattr("tass.worker.context._context", None)
    settings = get_settings()
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        _, key = create_key(session, "acme")
        session.commit()
    engine.dispose()
    yield settings, key
    stop_tracing_task_publishing()
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    CeleryInstrumentor().uninstrument()
    get_settings.cache_clear()


def take_message(client: TestClient, queue: str):  # type: ignore[no-untyped-def]
    producer = client.app.state.producer
    with producer.connection_for_read() as conn:
        simple = conn.SimpleQueue(queue)
        message = simple.get(timeout=5)
        message.ack()
        simple.close()
    return message


def place_on_a_worker(settings: Settings, sender: Celery) -> None:
    """One scheduling cycle with one live worker, `worker@test`, sending through `sender`."""
    engine = make_engine(settings.resolved_database_url)
    try:
        factory = make_session_factory(engine)
        with factory.begin() as session:
            report_alive(session, WorkerInfo("worker@test", "localhost", 1, [], "cpu", []))
        sent = Scheduler(sender, factory, settings, holder="test-scheduler").cycle()
        assert len(sent) == 1
    finally:
        engine.dispose()


IN_OWN_PROCESS = "TASS_TRACING_TEST_PROCESS"


def test_one_trace_runs_from_the_submit_to_the_epochs():
    """Runs the check below in a Python process of its own: OpenTelemetry's globals (the tracer
    provider, instrumented libraries) are per process, and other tests in a suite's process set
    them first."""
    env = {**os.environ, IN_OWN_PROCESS: "1"}
    inner = f"{__file__}::test_one_trace_in_this_process"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", inner]
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-2000:]
    assert "1 passed" in ran.stdout, ran.stdout[-2000:]


def _check_one_trace(traced_service, exporter):
    from tass.api.app import create_app
    from tass.worker.tasks import celery_app
    from tass.worker.tracing import instrument_celery

    settings, key = traced_service
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        body = {
            "type": "train",
            "spec": SPEC,
            "dataset": {"source": "synthetic", "num_examples": 80},
        }
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        # the scheduler (in a worker's main process) places the job and publishes its task
        # inside the submit's trace
        place_on_a_worker(settings, client.app.state.producer)
        message = take_message(client, node_queue("worker@test"))
    assert "traceparent" in message.headers

    # the worker: Celery's instrumentation, then the task as a worker runs a delivered message
    # (its headers are the request's attributes)
    instrument_celery()
    task = celery_app.tasks[TRAIN_TASK]
    run = build_tracer(TRAIN_TASK, task, app=celery_app, hostname="worker@test", eager=True)
    request = {**message.headers, "hostname": "worker@test", "delivery_info": {}}
    outcome = run(message.headers["id"], [job_id], {}, request)
    assert outcome.info is None, outcome  # no exception
    with client:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"

    finished = exporter.get_finished_spans()
    spans = {span.name: span for span in finished}
    by_id = {span.context.span_id: span for span in finished}

    def ancestors(span) -> list[str]:  # type: ignore[no-untyped-def]
        names = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    chain = ["POST /v1/jobs", f"publish {TRAIN_TASK}", f"run/{TRAIN_TASK}", "tass.train_job"]
    for name in chain:
        assert name in spans, sorted(spans)
    # the request's span (and FastAPI's span of the endpoint inside it) above the publish,
    # then each one the parent of the next, across the broker
    assert ancestors(spans[f"publish {TRAIN_TASK}"])[-1] == "POST /v1/jobs"
    for parent, child in itertools.pairwise(chain[1:]):
        assert spans[child].parent is not None, child
        assert spans[child].parent.span_id == spans[parent].context.span_id, (parent, child)
    job_span = spans["tass.train_job"]
    assert job_span.attributes["tass.job_id"] == job_id
    epochs = [s for s in exporter.get_finished_spans() if s.name.startswith("epoch ")]
    assert [s.name for s in epochs] == ["epoch 1", "epoch 2"]
    assert all(s.parent.span_id == job_span.context.span_id for s in epochs)
    assert "tass.metric.loss" in epochs[0].attributes
    trace_ids = {spans[name].context.trace_id for name in chain} | {
        s.context.trace_id for s in epochs
    }
    assert len(trace_ids) == 1


if os.environ.get(IN_OWN_PROCESS) == "1":  # collected only in the process started above

    def test_one_trace_in_this_process(traced_service, exporter):
        _check_one_trace(traced_service, exporter)
