"""One way to fail: core's refusals carry their HTTP answer and one handler writes it, so the
same refusal reads the same on every endpoint that meets it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app
from tass.core import datasets, job_lifecycle, netguard, pagination, registry
from tass.core.errors import DomainError
from tests.api.conftest import bearer
from tests.api.test_jobs import SYNTHETIC
from tests.api.test_sweeps import sweep_body


def test_a_tenant_at_its_quota_reads_the_same_429_from_jobs_and_sweeps(settings, db, keys):
    settings.max_active_jobs_per_tenant = 1
    application = create_app(settings)
    with TestClient(application, headers=bearer(keys["acme"])) as limited:
        application.state.session_factory = db
        first = limited.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC})
        assert first.status_code == 202, first.text
        job = limited.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC})
        sweep = limited.post("/v1/sweeps", json=sweep_body())
    expected = "tenant 'acme' already has 1 queued or running jobs (limit 1)"
    for refused in (job, sweep):
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "30"
        assert refused.json() == {"detail": expected}


@pytest.mark.parametrize(
    "error",
    [
        job_lifecycle.QuotaExceeded,
        job_lifecycle.IdempotencyConflict,
        registry.ModelRefNotFound,
        registry.VersionInUse,
        netguard.AddressRefused,
        netguard.LookupTimedOut,
        datasets.DatasetUnavailable,
        pagination.BadCursor,
    ],
)
def test_core_refusals_are_domain_errors_with_an_http_status(error):
    assert issubclass(error, DomainError)
    assert 400 <= error.status_code < 600
