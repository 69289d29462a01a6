"""The reaper loop and warm shutdown, run in the worker's main process (never in a job child):
stale jobs are requeued or failed, and on SIGTERM this node's running jobs go back to the
queue so another worker resumes them from their last checkpoint."""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

from core.db import make_engine, make_session_factory
from core.queue import EVALUATE_TASK, TRAIN_TASK
from core.reaper import Requeued, reap, requeue_held_by
from core.settings import get_settings

log = logging.getLogger(__name__)
_stop = threading.Event()


def enqueue(app: Celery, jobs: list[Requeued]) -> None:
    for job in jobs:
        task = TRAIN_TASK if job.job_type == "train" else EVALUATE_TASK
        app.send_task(
            task, args=[job.job_id], queue=job.queue, task_id=f"{job.job_id}-{job.attempt}"
        )
        log.warning("job %s requeued as attempt %s", job.job_id, job.attempt)


def reaper_loop(app: Celery) -> None:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    while not _stop.wait(settings.resolved_reaper_interval):
        try:
            enqueue(app, reap(factory, settings))
        except Exception:
            log.exception("reaper sweep failed; retrying")
    engine.dispose()


@worker_ready.connect
def _start_reaper(sender, **_: object) -> None:  # type: ignore[no-untyped-def]
    app = sender.app
    threading.Thread(target=reaper_loop, args=(app,), name="tass-reaper", daemon=True).start()


@worker_shutting_down.connect
def _requeue_on_warm_shutdown(sender: str, how: str = "", **_: object) -> None:
    """SIGTERM (warm): hand this node's running jobs back; their children see the lease
    change within one heartbeat and stop training within one batch."""
    _stop.set()
    if how != "Warm":
        return
    from worker.app import celery_app

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        jobs = requeue_held_by(
            make_session_factory(engine), settings, f"{sender}/", reason="worker shutting down"
        )
        enqueue(celery_app, jobs)
    except Exception:
        log.exception("could not requeue running jobs at shutdown")
    finally:
        engine.dispose()
