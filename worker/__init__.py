"""Celery worker: thin tasks that claim a job, run the trainer and store the results."""
