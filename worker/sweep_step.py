"""The sweep step of housekeeping: decide every running sweep once (new trials are queued jobs
that the scheduler places like any other)."""

from __future__ import annotations

import logging

from tass.core.db import SessionFactory
from tass.core.settings import Settings
from tass.core.sweeps import advance_sweeps

log = logging.getLogger(__name__)


def run_sweep_step(factory: SessionFactory, settings: Settings) -> None:
    for trial in advance_sweeps(factory, settings):
        log.info("sweep trial job %s queued", trial.job_id)
