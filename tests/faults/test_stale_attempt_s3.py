"""The paused-worker scenario of test_stale_attempt.py with the artifacts on S3 (a moto server)
instead of a local folder: PostgreSQL + Redis + S3 and two worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.faults.test_stale_attempt import pause_a_worker_past_its_lease_then_wake_it

pytestmark = pytest.mark.integration
BUCKET = "tass-faults"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    """A loopback S3 server; its credentials are also set in this process for the checks."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "faults",
        "AWS_SECRET_ACCESS_KEY": "faults-secret",
        "AWS_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=BUCKET)
        yield env
    server.stop()


@pytest.fixture(scope="module")
def fault_env(fault_env: dict[str, str], s3_env: dict[str, str]) -> dict[str, str]:
    """The fault services of conftest.py, storing artifacts on S3."""
    return {**fault_env, **s3_env, "TASS_ARTIFACT_URL": f"s3://{BUCKET}/artifacts"}


def test_on_s3_a_paused_attempt_that_wakes_after_the_retry_published_changes_nothing(
    http, api, workers, fault_env
):
    pause_a_worker_past_its_lease_then_wake_it(http, workers, fault_env)
