"""The sweep step of housekeeping: decide every running sweep once, then enqueue the trials
it started (after their rows are committed; a lost send is re-sent by `redispatch_lost`)."""

from __future__ import annotations

import logging

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from tass.core.queue import TRAIN_TASK
from tass.core.settings import Settings
from tass.core.sweeps import advance_sweeps

log = logging.getLogger(__name__)


def run_sweep_step(app: Celery, factory: sessionmaker[Session], settings: Settings) -> None:
    for trial in advance_sweeps(factory, settings):
        app.send_task(
            TRAIN_TASK,
            args=[trial.job_id],
            queue=trial.queue,
            task_id=f"{trial.job_id}-{trial.attempt}",
        )
        log.info("sweep trial job %s enqueued", trial.job_id)
