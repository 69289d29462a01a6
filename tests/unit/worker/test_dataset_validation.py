"""The validation task on its own (a worker context over SQLite and a local store): a good
archive becomes ready with what it holds, a bad one failed with the reason, a deleted or
already validated one is skipped, and validations no worker took up are found for re-sending."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tass.core.datasets import unstarted_validations
from tass.core.models import UploadedDataset
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.dataset_validation import run_validate_dataset
from tests.support.archives import class_files, tar_gz
from tests.support.uploaded_datasets import read_dataset, uploaded


@pytest.fixture
def ctx(tmp_path: Path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def test_a_good_archive_becomes_ready_with_what_it_holds(ctx: WorkerContext) -> None:
    dataset_id, _ = uploaded(ctx, tar_gz(class_files(per_class=3)))
    run_validate_dataset(ctx, dataset_id)
    dataset = read_dataset(ctx, dataset_id)
    assert dataset.status == "ready" and dataset.num_examples == 6 and dataset.error is None
    assert dataset.summary is not None
    assert dataset.summary["class_counts"] == {"train": {"cat": 3, "dog": 3}}
    run_validate_dataset(ctx, dataset_id)  # a second delivery changes nothing
    assert read_dataset(ctx, dataset_id).status == "ready"


def test_a_bad_archive_fails_naming_the_member(ctx: WorkerContext) -> None:
    files = {**class_files(per_class=2), "train/cat/broken.png": b"\x89PNG\r\n\x1a\n" + b"x" * 40}
    dataset_id, _ = uploaded(ctx, tar_gz(files))
    run_validate_dataset(ctx, dataset_id)
    dataset = read_dataset(ctx, dataset_id)
    assert dataset.status == "failed" and dataset.summary is None
    assert dataset.error is not None and dataset.error.startswith("pets:train/cat/broken.png")


def test_an_altered_stored_archive_fails(ctx: WorkerContext) -> None:
    dataset_id, _ = uploaded(ctx, tar_gz(class_files(per_class=2)))
    with ctx.sessions.begin() as session:
        dataset = session.get(UploadedDataset, dataset_id)
        assert dataset is not None
        dataset.sha256 = "0" * 64
    run_validate_dataset(ctx, dataset_id)
    dataset = read_dataset(ctx, dataset_id)
    assert dataset.status == "failed" and dataset.error is not None
    assert "sha256" in dataset.error


def test_unstarted_validations_are_found_for_resending(ctx: WorkerContext) -> None:
    lost, _ = uploaded(ctx, tar_gz(class_files(per_class=2)), age=timedelta(minutes=10))
    recent, _ = uploaded(ctx, tar_gz(class_files(per_class=2)))
    with ctx.sessions() as session:
        assert unstarted_validations(session, 120) == [lost]
    run_validate_dataset(ctx, lost)
    with ctx.sessions() as session:
        assert unstarted_validations(session, 120) == []
        assert unstarted_validations(session, 0) == [recent]
