"""The worker host's cache of uploaded archives keeps the most recently used CACHE_KEEP, but
never removes one a job is still opening: with more jobs on the host than CACHE_KEEP, the
others' downloads used to evict an archive between its fetch and its read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tass.core.datasets import dataset_key
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.dataset_cache import CACHE_KEEP
from tass.worker.job_data import cached_upload
from tests.support.archives import class_files, tar_gz
from tests.support.uploaded_datasets import uploaded


@pytest.fixture
def ctx(tmp_path: Path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def cached(ctx: WorkerContext) -> set[str]:
    cache = ctx.settings.data_dir / "dataset-cache"
    return {p.name for p in cache.iterdir() if not p.name.startswith(".")}


def test_an_archive_in_use_is_not_evicted_by_other_jobs_downloads(ctx: WorkerContext) -> None:
    datasets = [
        uploaded(ctx, tar_gz(class_files(per_class))) for per_class in range(1, CACHE_KEEP + 3)
    ]
    first_id, first_sha = datasets[0]
    with cached_upload(ctx, first_id, first_sha) as opening:  # job 1 is opening its archive
        for dataset_id, sha256 in datasets[1:]:  # while other jobs on the host fetch theirs
            with cached_upload(ctx, dataset_id, sha256) as other:
                assert other.exists()
        assert opening.exists(), "the archive was evicted while a job was opening it"
        assert len(cached(ctx)) == CACHE_KEEP + 1  # the pinned one, over the bound for now
    # once job 1 is done with it, the next fetch evicts it as the least recently used
    with cached_upload(ctx, *datasets[-1]):
        pass
    assert not opening.exists() and len(cached(ctx)) == CACHE_KEEP


def test_a_cached_archive_is_reused_and_an_evicted_one_fetched_again(ctx: WorkerContext) -> None:
    datasets = [
        uploaded(ctx, tar_gz(class_files(per_class))) for per_class in range(1, CACHE_KEEP + 3)
    ]
    for dataset_id, sha256 in datasets:
        with cached_upload(ctx, dataset_id, sha256):
            pass
    assert len(cached(ctx)) == CACHE_KEEP
    cache = ctx.settings.data_dir / "dataset-cache"
    locks = {p.name for p in cache.iterdir() if p.name.endswith(".lock")}
    assert locks == {f".{name}.lock" for name in cached(ctx)}  # evicted entries' locks go too
    first_id, first_sha = datasets[0]
    with cached_upload(ctx, first_id, first_sha) as again:
        assert again.read_bytes() == b"".join(ctx.store.iter_range(dataset_key(first_id, "tar.gz")))
