"""Shared service layer: settings, database, ORM models, job state machine, object store."""
