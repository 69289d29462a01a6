"""Celery tasks, registered by name; each one waits for its process's warm-up imports
(worker/prewarm.py), then hands the job id to its runner."""

from __future__ import annotations

from celery import Task

from tass.core.queue import EVALUATE_TASK, TRAIN_TASK, VALIDATE_DATASET_TASK
from tass.worker.app import celery_app
from tass.worker.context import get_context
from tass.worker.dataset_validation import run_validate_dataset
from tass.worker.evaluate_job import run_evaluate_job
from tass.worker.prewarm import warmup
from tass.worker.tracing import job_span
from tass.worker.train_job import run_train_job


@celery_app.task(name=TRAIN_TASK, bind=True)
def train(self: Task, job_id: str) -> None:
    warmup.wait()
    with job_span("train", job_id):
        run_train_job(get_context(self.request.hostname), job_id)


@celery_app.task(name=EVALUATE_TASK, bind=True)
def evaluate(self: Task, job_id: str) -> None:
    warmup.wait()
    with job_span("evaluate", job_id):
        run_evaluate_job(get_context(self.request.hostname), job_id)


@celery_app.task(name=VALIDATE_DATASET_TASK, bind=True)
def validate_dataset(self: Task, dataset_id: str) -> None:
    warmup.wait()
    run_validate_dataset(get_context(self.request.hostname), dataset_id)
