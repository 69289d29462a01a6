"""Queue and task names shared by the API (which enqueues by name) and the worker."""

from __future__ import annotations

from celery import Celery

from tass.core.settings import Settings

TRAIN_TASK = "tass.train"
EVALUATE_TASK = "tass.evaluate"
# an uploaded dataset's validation; it runs on the evaluate queue (short, CPU-bound)
VALIDATE_DATASET_TASK = "tass.validate_dataset"


NODE_QUEUE_PREFIX = "tass.node."


def node_queue(worker: str) -> str:
    """The queue only worker node `worker` consumes: the scheduler sends it the jobs it placed
    there (Celery stays the transport; the database decides what runs where)."""
    return f"{NODE_QUEUE_PREFIX}{worker}"


def celery_config(settings: Settings) -> dict[str, object]:
    """Broker settings both sides must agree on (JSON only; the DB holds results)."""
    broker_url = settings.resolved_broker_url
    transport_options: dict[str, object] = {}
    if broker_url.startswith(("redis", "rediss")):
        # Redis redelivers an unacknowledged message after this long: it must exceed the
        # longest job, or a healthy long job would be delivered twice.
        transport_options["visibility_timeout"] = settings.visibility_timeout_seconds
    return {
        "broker_url": broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_routes": {
            TRAIN_TASK: {"queue": settings.train_queue},
            EVALUATE_TASK: {"queue": settings.evaluate_queue},
            VALIDATE_DATASET_TASK: {"queue": settings.evaluate_queue},
        },
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options,
    }


def make_producer(settings: Settings) -> Celery:
    """A Celery client used only to send tasks by name."""
    app = Celery("tass-producer")
    app.conf.update(celery_config(settings))
    return app
