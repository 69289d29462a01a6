"""The client stops polling exactly when the server stops changing a job or a sweep: its one
set of final statuses (it cannot import core) names the server's."""

from __future__ import annotations

from tass.client.api_client import FINAL_STATUSES
from tass.core.states import FINAL_STATUSES as SERVER_FINAL_STATUSES
from tass.core.sweeps import SweepStatus


def test_the_clients_final_statuses_are_the_servers_for_jobs_and_sweeps() -> None:
    assert {status.value for status in SERVER_FINAL_STATUSES} == FINAL_STATUSES
    assert {s.value for s in SweepStatus if s is not SweepStatus.RUNNING} == FINAL_STATUSES
