"""A running job's lease: a heartbeat thread that renews it and notices when it is lost."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

from tass.core.clock import database_now
from tass.core.db import DatabaseError, Session
from tass.core.job_lifecycle import fail_past_deadline, heartbeat, preemption_requested
from tass.worker.context import WorkerContext

log = logging.getLogger(__name__)


class Lease:
    """Held while (job, attempt) is `running`; `lost` is set once a renewal changes no row
    (the job was cancelled, timed out or handed to another attempt). With `preempt`, a renewal
    that finds the scheduler asked the job to stop sets that event (the trainer checkpoints
    after its current batch and hands the job back: worker.preemption)."""

    def __init__(
        self,
        ctx: WorkerContext,
        job_id: str,
        attempt: int,
        deadline: datetime | None = None,
        preempt: threading.Event | None = None,
    ) -> None:
        self.ctx, self.job_id, self.attempt, self.deadline = ctx, job_id, attempt, deadline
        self.preempt = preempt
        self._asked = False
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def renew(self, **values: Any) -> bool:
        """Heartbeat (and write `values`) only while this attempt still runs the job."""
        with self.ctx.sessions.begin() as session:
            held = self.renew_in(session, **values)
        return held

    def renew_in(self, session: Session, **values: Any) -> bool:
        """The heartbeat inside the caller's transaction."""
        if not heartbeat(session, self.job_id, self.attempt, **values):
            self.lost.set()
            return False
        preempt = self.preempt  # (only ever set here: the trainer is the one that reads it)
        if preempt is not None and not self._asked and preemption_requested(session, self.job_id):
            log.warning("job %s: the scheduler asks it to stop; checkpointing", self.job_id)
            self._asked = True
            preempt.set()
        return True

    def expire(self) -> None:
        """Past the job's max runtime: fail it with reason `timeout`, which ends the lease."""
        with self.ctx.sessions.begin() as session:
            fail_past_deadline(session, self.job_id, self.attempt, self.ctx.settings)
        self.lost.set()

    def past_deadline(self) -> bool:
        """Whether the deadline has passed by the database's clock (never this host's)."""
        if self.deadline is None:
            return False
        with self.ctx.sessions() as session:
            return database_now(session) > self.deadline

    def _beat(self) -> None:
        while not self._stop.wait(self.ctx.settings.heartbeat_seconds):
            try:
                if self.past_deadline():
                    log.warning("job %s passed its deadline; stopping it", self.job_id)
                    self.expire()
                    return
                if not self.renew():
                    log.info("job %s attempt %s lost its lease", self.job_id, self.attempt)
                    return
            except DatabaseError as exc:  # a DB blip: keep training, try again next beat
                log.warning("heartbeat for job %s failed: %s", self.job_id, exc)
