"""Spot termination notices, with the metadata service stubbed (tests never reach it): each
cloud's answer is read right, a failing service is retried, and a notice stops the worker."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tass.core.settings import Settings
from tass.worker import housekeeping
from tass.worker.spot_notice import Notice, SpotNoticeWatcher, check


def stub(answers: dict[str, tuple[int, str]], seen: list | None = None):  # type: ignore[no-untyped-def]
    """A fetch answering by URL path fragment; anything else is a 404."""

    def fetch(method: str, url: str, headers: dict[str, str]) -> tuple[int, str]:
        if seen is not None:
            seen.append((method, url, headers))
        for fragment, answer in answers.items():
            if fragment in url:
                return answer
        return 404, ""

    return fetch


def test_aws_notice_uses_an_imdsv2_token() -> None:
    seen: list = []
    action = json.dumps({"action": "terminate", "time": "2026-12-07T17:00:00Z"})
    fetch = stub({"api/token": (200, "tok"), "spot/instance-action": (200, action)}, seen)
    assert check("aws", fetch) == Notice("aws", "terminate at 2026-12-07T17:00:00Z")
    assert seen[0][0] == "PUT" and seen[1][2] == {"X-aws-ec2-metadata-token": "tok"}
    assert check("aws", stub({"api/token": (200, "tok")})) is None  # 404: none scheduled


def test_gcp_and_azure_notices() -> None:
    assert check("gcp", stub({"preempted": (200, "TRUE")})) == Notice("gcp", "instance preempted")
    assert check("gcp", stub({"preempted": (200, "FALSE")})) is None
    events = {"Events": [{"EventType": "Reboot"}, {"EventType": "Preempt", "NotBefore": "soon"}]}
    notice = check("azure", stub({"scheduledevents": (200, json.dumps(events))}))
    assert notice == Notice("azure", "preempt not before soon")
    assert check("azure", stub({"scheduledevents": (200, '{"Events": []}')})) is None


def test_the_watcher_retries_failures_and_stops_once_on_a_notice() -> None:
    calls = {"n": 0}

    def flaky(method: str, url: str, headers: dict[str, str]) -> tuple[int, str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("no metadata service")
        if calls["n"] == 2:
            return 200, "not json"
        return 200, "TRUE"

    notices: list[Notice] = []
    watcher = SpotNoticeWatcher(
        "gcp", notices.append, interval=0.01, stop=threading.Event(), fetch=flaky
    )
    assert watcher.run() == Notice("gcp", "instance preempted")
    assert notices == [Notice("gcp", "instance preempted")] and calls["n"] == 3


def test_off_by_default_and_a_notice_shuts_the_worker_down_warm(monkeypatch) -> None:
    assert Settings().spot_notice == "off"
    assert housekeeping.start_spot_watch(Settings()) is None
    with pytest.raises(ValueError, match="spot notice"):
        SpotNoticeWatcher("ibm", print, interval=1, stop=threading.Event())
    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(housekeeping.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    housekeeping._stop_this_worker(Notice("aws", "terminate"))
    assert killed == [(housekeeping.os.getpid(), housekeeping.signal.SIGTERM)]
