"""Seeding the database the way a finished training job leaves it (for tests that need a
stored, downloadable model without running TensorFlow)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tass.core.apikeys import create_key
from tass.core.db import make_engine, make_session_factory
from tass.core.job_results import stored_artifact
from tass.core.models import Job, Model, new_id
from tass.core.objectstore import ObjectStore


def seed_trained_model(
    session: Session,
    store: ObjectStore,
    payload: bytes,
    *,
    tenant: str,
    key: str | None = None,
    **model_fields: Any,
) -> Model:
    """A succeeded training job, its registry entry and its stored .keras file (flushed, not
    committed: the caller owns the transaction)."""
    obj = store.put_bytes(key or f"models/seeded-{new_id()}/attempt-1/model.keras", payload)
    job = Job(
        type="train",
        tenant=tenant,
        status="succeeded",
        queue="train",
        dataset={"source": "synthetic"},
    )
    session.add(job)
    session.flush()
    model = Model(job_id=job.id, tenant=tenant, **{"metrics": {}, **model_fields})
    session.add(model)
    session.flush()
    session.add(stored_artifact(obj, job_id=job.id, kind="model-keras", model_id=model.id))
    session.flush()
    return model


def new_api_key(database_url: str, tenant: str) -> str:
    """A key for `tenant` in the database at `database_url`, made as `tass keys create` does."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            _, plaintext = create_key(session, tenant)
    finally:
        engine.dispose()
    return plaintext
