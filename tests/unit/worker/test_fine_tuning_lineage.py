"""A fine-tuned job's model records its lineage: the parent model id and the sha256 of the
parent's .keras file the worker read (checked on download), shown by GET /v1/models/{id}."""

from __future__ import annotations

import hashlib

import pytest

from tass.api.presenters import model_out
from tass.contract.artifacts import ArtifactError
from tass.contract.spec import TrainSpec
from tass.core.models import Job, Model
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.train_job import _publish, fetch_parent_model
from tests.support.seed import seed_trained_model
from tests.support.worker_jobs import claimed_job

PARENT_BYTES = b"the parent's keras file"


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def test_the_fine_tuned_model_names_its_parent_and_the_parents_sha256(ctx, tmp_path):
    with ctx.sessions.begin() as session:
        parent_id = seed_trained_model(session, ctx.store, PARENT_BYTES, tenant="acme").id
    spec = TrainSpec(init_from=parent_id)
    job = claimed_job(ctx, tenant="acme", spec=spec.model_dump(mode="json"))
    fetched = fetch_parent_model(ctx, spec, tmp_path / "work")
    assert fetched is not None and fetched[0].read_bytes() == PARENT_BYTES
    assert fetched[1] == hashlib.sha256(PARENT_BYTES).hexdigest()
    keras_file, zipped = tmp_path / "m.keras", tmp_path / "m.zip"
    keras_file.write_bytes(b"child")
    zipped.write_bytes(b"zip")
    _publish(ctx, job, {}, ["a", "b"], keras_file, zipped, (parent_id, fetched[1]))
    with ctx.sessions() as session:
        child = session.get(Model, session.get(Job, job.id).model_id)
        shown = model_out(child)
    assert shown.parent_model_id == parent_id
    assert shown.parent_sha256 == hashlib.sha256(PARENT_BYTES).hexdigest()
    assert TrainSpec().init_from is None and fetch_parent_model(ctx, TrainSpec(), tmp_path) is None


def test_a_parent_without_a_stored_file_fails_the_job_naming_it(ctx, tmp_path):
    with pytest.raises(ArtifactError, match=r"init_from: model 0123 has no stored \.keras file"):
        fetch_parent_model(ctx, TrainSpec(init_from="0123"), tmp_path)
