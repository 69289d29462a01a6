"""The sweep step of housekeeping: decide every running sweep once, then enqueue the trials
it started (after their rows are committed; a lost send is re-sent by `redispatch_lost`)."""

from __future__ import annotations

import logging

from celery import Celery

from tass.core.db import SessionFactory
from tass.core.job_lifecycle import enqueue_all
from tass.core.settings import Settings
from tass.core.sweeps import advance_sweeps

log = logging.getLogger(__name__)


def run_sweep_step(app: Celery, factory: SessionFactory, settings: Settings) -> None:
    for trial in enqueue_all(app, advance_sweeps(factory, settings)):
        log.info("sweep trial job %s enqueued", trial.job_id)
