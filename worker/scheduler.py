"""The scheduler loop: every worker node's main process runs one, and the one holding the
scheduler lease (core.scheduler_store) decides; when its holder dies, another node takes the
lease over once it expires (TASS_SCHEDULER_LEASE_SECONDS). Embedded `tass up` runs it in its
worker, so no extra process is needed anywhere.

A cycle: read the cluster (live workers, free devices, the waiting queue, running jobs, tenants,
usage), let the pure policy decide (`core.scheduling.schedule`), write the placements, the
preemption requests and each waiting job's place and reason in one transaction, and after the
commit send each placed job to its worker's own queue. Placements a dead worker never claimed
go back to the queue; ones a live worker has not claimed for TASS_REDISPATCH_AFTER_SECONDS are
sent again (the claim runs a job once however many messages arrive)."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

from tass.core.db import SessionFactory
from tass.core.job_lifecycle import TaskSender, dispatch
from tass.core.scheduler_store import (
    Dispatch,
    accrue_usage,
    any_queued,
    apply_decision,
    hold_lease,
    load_cluster,
    release_lease,
    resend_due,
    still_holding,
    unplace_lost,
)
from tass.core.scheduling import SchedulerConfig, schedule
from tass.core.settings import Settings
from tass.core.tracing import continued_trace

log = logging.getLogger(__name__)

USAGE_EVERY_SECONDS = 5.0
"""How often the leader folds the current allocations into the tenants' decayed usage."""


def scheduler_config(settings: Settings) -> SchedulerConfig:
    return SchedulerConfig(
        half_life_s=settings.scheduler_half_life_seconds,
        reserve_after_s=settings.scheduler_reserve_after_seconds,
    )


@dataclass
class Scheduler:
    """One node's scheduler: it acts only while it holds the lease."""

    sender: TaskSender
    factory: SessionFactory
    settings: Settings
    holder: str
    leading: bool = False
    _usage_due: float = field(default=0.0)
    _renew_due: float = field(default=0.0)

    def cycle(self) -> list[Dispatch]:
        """One decision if this node holds the lease; returns what it sent."""
        self._renew_lease()
        if not self.leading:
            return []
        config = scheduler_config(self.settings)
        usage_due = time.monotonic() >= self._usage_due
        with self.factory() as session:
            if not usage_due and not any_queued(session):
                return []  # an idle cycle: one indexed read, no write
        with self.factory.begin() as session:
            if not still_holding(session, self.holder):
                self._lead(False)
                return []
            cluster = load_cluster(session, self.settings)
            unplace_lost(session, cluster)
            decision = schedule(cluster.snapshot, cluster.now.timestamp(), config)
            sends = apply_decision(
                session, cluster, decision, self.settings.scheduler_positions_shown
            )
            sends += resend_due(session, cluster, self.settings.redispatch_after_seconds)
            if usage_due:
                self._usage_due = time.monotonic() + USAGE_EVERY_SECONDS
                accrue_usage(session, cluster.held, cluster.now, config.half_life_s)
        traced = self.settings.opentelemetry
        for send in sends:
            with continued_trace(send.trace_context) if traced else nullcontext():
                sent = dispatch(self.sender, send.job_id, send.job_type, send.attempt, send.worker)
            if sent:
                log.info("job %s placed on %s", send.job_id, send.worker)
        return sends

    def _renew_lease(self) -> None:
        """Take the lease, or renew it once a third of it has passed (not every cycle: on
        SQLite each write ends every API process's read cache)."""
        if self.leading and time.monotonic() < self._renew_due:
            return
        seconds = self.settings.scheduler_lease_seconds
        with self.factory.begin() as session:
            self._lead(hold_lease(session, self.holder, seconds))
        if self.leading:
            self._renew_due = time.monotonic() + seconds / 3

    def release(self) -> None:
        if not self.leading:
            return
        with self.factory.begin() as session:
            release_lease(session, self.holder)
        self.leading = False

    def _lead(self, held: bool) -> None:
        if held != self.leading:
            log.warning("%s %s the scheduler lease", self.holder, "took" if held else "lost")
        self.leading = held


def run_scheduler(scheduler: Scheduler, stop: threading.Event) -> None:
    """Cycle until `stop`; a failed cycle (a database blip) is logged and retried."""
    interval = scheduler.settings.scheduler_interval_seconds
    while not stop.is_set():
        try:
            scheduler.cycle()
        except Exception:
            log.exception("scheduling cycle failed; retrying")
        stop.wait(interval)
    try:
        scheduler.release()
    except Exception:
        log.exception("could not release the scheduler lease (it expires by itself)")


def start_scheduler(scheduler: Scheduler, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=run_scheduler, args=(scheduler, stop), name="tass-scheduler", daemon=True
    )
    thread.start()
    return thread
