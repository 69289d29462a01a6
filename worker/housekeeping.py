"""Housekeeping in the worker's main process (never in a job child): report this node to the
worker registry, reap stale jobs (requeue or fail), deliver registry mirrors to MLflow
(worker.mlflow_registry, its own thread), and on SIGTERM tell this node's train jobs
to checkpoint and hand themselves back (worker.preemption); other running jobs are requeued so
another worker resumes them from their last checkpoint."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down
from celery.worker import state as worker_state
from kombu.exceptions import ChannelError

from tass.core.datasets import reap_validations, unstarted_validations
from tass.core.db import SessionFactory
from tass.core.objectstore import ObjectStore
from tass.core.queue import VALIDATE_DATASET_TASK
from tass.core.reaper import reap, requeue_held_by
from tass.core.retention import collect_garbage
from tass.core.settings import Settings, get_settings
from tass.core.tracing import trace_task_publishing
from tass.core.workers import WorkerInfo, report_alive, report_stopped
from tass.worker.context import worker_sessions
from tass.worker.devices import visible_gpus
from tass.worker.mlflow_registry import start_registry_mirror
from tass.worker.preemption import tell_job_children_to_stop
from tass.worker.scheduler import Scheduler, run_scheduler
from tass.worker.spot_notice import Notice, SpotNoticeWatcher
from tass.worker.sweep_step import run_sweep_step
from tass.worker.webhook_delivery import start_webhook_delivery

log = logging.getLogger(__name__)
_stop = threading.Event()


def broker_queue_length(channel: Any, queue: str) -> int:  # a kombu Channel (untyped)
    """Messages waiting in the broker; a queue the broker does not know holds none."""
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:
        return 0


def resend_validations(app: Celery, factory: SessionFactory, settings: Settings) -> None:
    """Dataset validations no worker took up while the evaluate queue is empty: lost messages,
    sent again (one that arrives after the dataset is ready or failed does nothing)."""
    with factory() as session:
        lost = unstarted_validations(session, settings.redispatch_after_seconds)
    for dataset_id in lost:
        log.warning("re-sending the validation of dataset %s", dataset_id)
        app.send_task(VALIDATE_DATASET_TASK, args=[dataset_id], queue=settings.evaluate_queue)


def resend_stale_validations(app: Celery, factory: SessionFactory, settings: Settings) -> None:
    """Validations whose worker is gone (stale lease): sent again, or failed once their
    attempts or their deadline are used up (core.datasets.reap_validations)."""
    with factory.begin() as session:
        stale = reap_validations(session, settings)
    for dataset_id in stale:
        log.warning("validation of dataset %s lost its worker; sending it again", dataset_id)
        app.send_task(VALIDATE_DATASET_TASK, args=[dataset_id], queue=settings.evaluate_queue)


def redispatch_lost_validations(app: Celery, settings: Settings, factory: SessionFactory) -> None:
    """An evaluate queue that is empty in the broker while validations wait in the database
    means their messages were lost (say, Redis restarted without persistence): send them again.
    (Jobs need no such pass: the scheduler re-sends a placement its worker has not claimed.)"""
    with app.connection_for_read() as conn:
        if broker_queue_length(conn.default_channel, settings.evaluate_queue) == 0:
            resend_validations(app, factory, settings)


class GarbageCollector:
    """Runs core.retention every gc_interval_seconds (the first time one interval after start,
    so a restarting fleet does not list the store at once)."""

    def __init__(self, factory: SessionFactory, settings: Settings) -> None:
        self.factory, self.settings = factory, settings
        self.store = ObjectStore(settings.resolved_artifact_url)
        self.due = time.monotonic() + settings.gc_interval_seconds

    def maybe_run(self) -> None:
        if not self.settings.gc_interval_seconds or time.monotonic() < self.due:
            return
        self.due = time.monotonic() + self.settings.gc_interval_seconds
        removed = collect_garbage(
            self.factory,
            self.store,
            self.settings.keep_checkpoints,
            keep_logs_days=self.settings.keep_job_logs_days,
        )
        if removed:
            freed = sum(item.size for item in removed)
            log.info("garbage collection removed %d objects (%d bytes)", len(removed), freed)


def busy_processes() -> int:
    """Tasks this node's pool processes run now (Celery's own record, kept in this process):
    a job process that hangs after its job was requeued still counts (the scheduler places
    nothing on its device)."""
    return len(worker_state.active_requests)


def housekeeping_loop(app: Celery, info: WorkerInfo) -> None:
    settings = get_settings()
    with worker_sessions(settings) as factory:
        _housekeep_until_stopped(app, info, factory, settings)


def _housekeep_until_stopped(
    app: Celery, info: WorkerInfo, factory: SessionFactory, settings: Settings
) -> None:
    interval = min(settings.resolved_reaper_interval, settings.heartbeat_seconds)
    collector = GarbageCollector(factory, settings)
    while True:
        try:
            with factory.begin() as session:
                report_alive(session, replace(info, busy=busy_processes()))
            for job in reap(factory, settings):
                log.warning("job %s requeued as attempt %s", job.job_id, job.attempt)
            resend_stale_validations(app, factory, settings)
            redispatch_lost_validations(app, settings, factory)
        except Exception:
            log.exception("housekeeping sweep failed; retrying")
        try:
            run_sweep_step(factory, settings)
        except Exception:
            log.exception("sweep decisions failed; retrying")
        try:
            collector.maybe_run()
        except Exception:
            log.exception("garbage collection failed; retrying at the next interval")
        if _stop.wait(interval):
            break


@worker_ready.connect
def _start_housekeeping(sender: Any, **_: object) -> None:  # Celery's WorkController (untyped)
    settings = get_settings()
    gpus = visible_gpus()
    info = WorkerInfo(
        name=sender.hostname,
        host=socket.gethostname(),
        pid=os.getpid(),
        queues=sorted(q.name for q in sender.task_consumer.queues),
        device="gpu" if gpus else "cpu",
        gpus=gpus,
        pool=settings.worker_pool,
        slots=len(gpus) or settings.worker_slots,
    )
    threading.Thread(
        target=housekeeping_loop, args=(sender.app, info), name="tass-housekeeping", daemon=True
    ).start()
    if settings.opentelemetry:  # the scheduler publishes each job inside its submit's trace
        trace_task_publishing()
    start_node_scheduler(sender.app, sender.hostname, settings)
    start_webhook_delivery(_stop)
    start_registry_mirror(_stop)  # registered versions to MLflow's registry, when tracking is on
    start_spot_watch(get_settings())


def start_node_scheduler(app: Celery, node: str, settings: Settings) -> None:
    """This node's scheduler loop (worker.scheduler): it decides while it holds the lease."""

    def run() -> None:
        with worker_sessions(settings) as factory:
            run_scheduler(Scheduler(app, factory, settings, holder=f"{node}/{os.getpid()}"), _stop)

    threading.Thread(target=run, name="tass-scheduler", daemon=True).start()


def _stop_this_worker(notice: Notice) -> None:
    """A termination notice: shut down as a SIGTERM would (warm), so jobs checkpoint."""
    os.kill(os.getpid(), signal.SIGTERM)


def start_spot_watch(settings: Settings) -> SpotNoticeWatcher | None:
    """Poll the node's metadata endpoint for a spot termination notice (TASS_SPOT_NOTICE)."""
    if settings.spot_notice == "off":
        return None
    watcher = SpotNoticeWatcher(
        settings.spot_notice,
        _stop_this_worker,
        interval=settings.spot_poll_seconds,
        stop=_stop,
    )
    watcher.start()
    return watcher


@worker_shutting_down.connect
def _on_shutdown(sender: str, how: str = "", **_: object) -> None:
    """SIGTERM (warm): each child training a job checkpoints after its current batch and hands
    the job back as `preempted` (the pool waits for it); any other running job of this node
    is requeued here, and its child sees the lease change within one heartbeat. The scheduler
    places them again (not on this node: it reports itself stopped)."""
    _stop.set()
    settings = get_settings()
    try:
        with worker_sessions(settings) as factory:
            if how == "Warm":
                told = tell_job_children_to_stop(factory, sender)
                requeue_held_by(
                    factory, settings, f"{sender}/", reason="worker shutting down", exclude=told
                )
            with factory.begin() as session:
                report_stopped(session, sender)
    except Exception:
        log.exception("could not hand back running jobs at shutdown")
