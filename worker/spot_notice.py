"""Spot / preemptible termination notices, polled from the node's metadata endpoint.

Off by default (TASS_SPOT_NOTICE=off). Set it to the cloud the worker runs on and a thread in
the worker's main process asks the instance metadata service every TASS_SPOT_POLL_SECONDS
whether the node is about to be reclaimed; on a notice the worker stops itself as a SIGTERM
would (a warm shutdown), so its train jobs checkpoint and go back to the queue as `preempted`
(worker.preemption) within the notice's grace (AWS: 2 minutes, GCP: 30 s, Azure: 30 s).

    aws    GET /latest/meta-data/spot/instance-action (IMDSv2 token): 200 = notice, 404 = none
    gcp    GET /computeMetadata/v1/instance/preempted (Metadata-Flavor: Google): TRUE = notice
    azure  GET /metadata/scheduledevents (Metadata: true): an event of type Preempt = notice

On Kubernetes the node's own termination handler (AWS Node Termination Handler, GKE's graceful
node shutdown) usually drains the node first, which reaches the worker as SIGTERM anyway; the
poller is for workers on bare spot VMs, or as a second line.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

log = logging.getLogger(__name__)

Cloud = Literal["aws", "gcp", "azure"]
# (method, url, headers) -> (HTTP status, body); the real one is `metadata_fetch`
Fetch = Callable[[str, str, dict[str, str]], tuple[int, str]]

AWS_BASE = "http://169.254.169.254/latest"
GCP_PREEMPTED = "http://metadata.google.internal/computeMetadata/v1/instance/preempted"
AZURE_EVENTS = "http://169.254.169.254/metadata/scheduledevents?api-version=2020-07-01"


@dataclass(frozen=True)
class Notice:
    cloud: str
    detail: str


def metadata_fetch(method: str, url: str, headers: dict[str, str]) -> tuple[int, str]:
    """One request to the metadata service: no proxy, a short timeout (it is on the node)."""
    response = httpx.request(method, url, headers=headers, timeout=2.0, trust_env=False)
    return response.status_code, response.text


def _aws(fetch: Fetch) -> Notice | None:
    status, token = fetch(
        "PUT", f"{AWS_BASE}/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
    )
    headers = {"X-aws-ec2-metadata-token": token} if status == 200 else {}
    status, body = fetch("GET", f"{AWS_BASE}/meta-data/spot/instance-action", headers)
    if status != 200:
        return None  # 404: no interruption scheduled
    action = json.loads(body)
    return Notice("aws", f"{action.get('action', 'terminate')} at {action.get('time', '?')}")


def _gcp(fetch: Fetch) -> Notice | None:
    status, body = fetch("GET", GCP_PREEMPTED, {"Metadata-Flavor": "Google"})
    if status == 200 and body.strip().upper() == "TRUE":
        return Notice("gcp", "instance preempted")
    return None


def _azure(fetch: Fetch) -> Notice | None:
    status, body = fetch("GET", AZURE_EVENTS, {"Metadata": "true"})
    if status != 200:
        return None
    for event in json.loads(body).get("Events", []):
        if event.get("EventType") == "Preempt":
            return Notice("azure", f"preempt not before {event.get('NotBefore', '?')}")
    return None


CHECKS: dict[str, Callable[[Fetch], Notice | None]] = {"aws": _aws, "gcp": _gcp, "azure": _azure}


def check(cloud: str, fetch: Fetch) -> Notice | None:
    """Whether the metadata service of `cloud` announces this node's termination."""
    return CHECKS[cloud](fetch)


class SpotNoticeWatcher:
    """Polls until a notice comes (then calls `on_notice` once and ends) or `stop` is set. A
    metadata service that does not answer, or answers nonsense, is tried again next time."""

    def __init__(
        self,
        cloud: str,
        on_notice: Callable[[Notice], None],
        *,
        interval: float,
        stop: threading.Event,
        fetch: Fetch = metadata_fetch,
    ) -> None:
        if cloud not in CHECKS:
            raise ValueError(f"no spot notice check for {cloud!r} (one of {sorted(CHECKS)})")
        self.cloud, self.on_notice, self.interval = cloud, on_notice, interval
        self.stop, self.fetch = stop, fetch

    def poll_once(self) -> Notice | None:
        try:
            return check(self.cloud, self.fetch)
        except (httpx.HTTPError, OSError, ValueError, AttributeError) as exc:
            log.debug("spot notice check (%s) failed: %s", self.cloud, exc)
            return None

    def run(self) -> Notice | None:
        while not self.stop.is_set():
            notice = self.poll_once()
            if notice is not None:
                log.warning("spot termination notice (%s): %s", notice.cloud, notice.detail)
                self.on_notice(notice)
                return notice
            self.stop.wait(self.interval)
        return None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="tass-spot-notice", daemon=True)
        thread.start()
        return thread
