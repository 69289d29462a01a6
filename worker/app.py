"""The Celery application: `celery -A tass.worker.app worker` (or `tass worker`)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup
from kombu import Exchange, Queue

from tass.core.queue import celery_config, node_queue
from tass.core.settings import get_settings


def create_celery() -> Celery:
    settings = get_settings()
    app = Celery("tass", include=["tass.worker.tasks", "tass.worker.housekeeping"])
    app.conf.update(celery_config(settings))
    app.conf.update(
        # explicit exchanges: a bare Queue(name) would bind to the default queue's exchange
        # and key, and every message would be delivered to both queues
        task_queues=[
            direct_queue(name) for name in (settings.train_queue, settings.evaluate_queue)
        ],
        task_default_queue=settings.train_queue,
        # Ack only when the task returns, and requeue the message if the child process dies,
        # so a lost worker never loses the job (the DB claim stops double training).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One job per process at a time, and a fresh process per job: TensorFlow's memory is
        # returned to the system when the child exits, and CUDA is never initialised in the
        # parent before fork (only the children import the trainer: each new child imports it
        # while idle, before its job arrives: worker/prewarm.py).
        # (prefork hands a task only to an idle child: Celery's "fair" scheduling, the default
        # since 5.x, so a long job never holds a short one behind it in a busy child)
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,
        # one process per device the node advertises to the scheduler (TASS_WORKER_SLOTS;
        # `tass worker --gpus 0,1` sets it to the GPU count); `-c` overrides it
        worker_concurrency=settings.worker_slots,
        task_track_started=False,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    return app


def direct_queue(name: str) -> Queue:
    """A queue bound to its own direct exchange by its own name (see task_queues above)."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


@celeryd_after_setup.connect
def _consume_node_queue(sender: str, instance: Any, **_: object) -> None:
    """Every node also consumes its own queue, where the scheduler sends the jobs it placed
    there (`instance` is Celery's WorkController, untyped)."""
    instance.app.amqp.queues.select_add(direct_queue(node_queue(sender)))


celery_app = create_celery()
