"""The next job's process, ready before the job arrives.

Celery's prefork pool runs each job in a child process of its own (`worker_max_tasks_per_child
=1`, worker/app.py) and starts the replacement child as soon as the previous one exits, while
the worker waits for work. Each child imports TensorFlow, Keras and the trainer on a background
thread as soon as it starts, so a job that arrives later finds them loaded instead of paying
for the import after it went `running` (docs/benchmarks.md, "Job start-up").

Nothing here touches a device: importing TensorFlow creates no CUDA context (the job's own
`configure` does that, in this child), and the Celery parent that forks the children never
imports TensorFlow at all. `TASS_WORKER_PREWARM=false` turns the warm-up off."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time

from celery.signals import worker_process_init

from tass.core.settings import get_settings

log = logging.getLogger(__name__)

# what every job process needs: TensorFlow and Keras come with them
WARM_MODULES = (
    "tass.trainer.train",
    "tass.trainer.saving",
    "tass.trainer.evaluate",
    "tass.trainer.data",
    "tass.trainer.data.describe",
)


class Warmup:
    """Imports WARM_MODULES once, on a daemon thread; `wait` blocks until it has ended."""

    def __init__(self, modules: tuple[str, ...] = WARM_MODULES) -> None:
        self.modules = modules
        self.started = False
        self.seconds: float | None = None
        self._done = threading.Event()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        threading.Thread(target=self._run, name="tass-prewarm", daemon=True).start()

    def _run(self) -> None:
        began = time.perf_counter()
        try:
            for name in self.modules:
                importlib.import_module(name)
        except Exception:  # the job imports them again and reports the error itself
            log.warning("pre-warming the job process failed", exc_info=True)
        finally:
            self.seconds = time.perf_counter() - began
            self._done.set()
        log.info("job process %d pre-warmed in %.1f s", os.getpid(), self.seconds)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up has ended (at once when none was started): a job never
        imports a module while the warm-up thread is importing it."""
        return self._done.wait(timeout) if self.started else True


warmup = Warmup()


@worker_process_init.connect
def _warm_up_new_job_process(**_: object) -> None:
    """Runs in each new pool child (never in the parent), right after it was forked."""
    if get_settings().worker_prewarm:
        warmup.start()
