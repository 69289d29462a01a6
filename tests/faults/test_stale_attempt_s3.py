"""The paused-worker scenario of test_stale_attempt.py with the artifacts on S3 (a moto server)
instead of a local folder: PostgreSQL + Redis + S3 and two worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.test_stale_attempt import pause_a_worker_past_its_lease_then_wake_it
from tests.support.s3 import moto_s3

pytestmark = pytest.mark.integration
BUCKET = "tass-faults"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """A loopback S3 server; its credentials are also set in this process for the checks."""
    with moto_s3(BUCKET, access_key="faults") as env, pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def fault_env(fault_env: dict[str, str], s3_env: dict[str, str]) -> dict[str, str]:
    """The fault services of conftest.py, storing artifacts on S3."""
    return {**fault_env, **s3_env, "TASS_ARTIFACT_URL": f"s3://{BUCKET}/artifacts"}


def test_on_s3_a_paused_attempt_that_wakes_after_the_retry_published_changes_nothing(
    http, api, workers, fault_env
):
    pause_a_worker_past_its_lease_then_wake_it(http, workers, fault_env)
