"""Webhook delivery from the outbox, on a thread of its own in each worker's main process (so a
slow receiver never delays heartbeats, the reaper or a job): claim due events, check the URL's
addresses again, POST the JSON payload signed by the Standard Webhooks library to a checked
address, and record the attempt. Any worker may deliver any event; the claim keeps two from
sending the same attempt, and the outbox keeps events across restarts.

No receiver can hold up the others: one attempt (lookup, connect, request, the answer's
headers) ends by TASS_WEBHOOK_TIMEOUT_SECONDS in all, however slowly the receiver trickles
bytes, which is well inside the claim's lease (so no second worker sends it meanwhile); each
attempt runs on a pool slot of its own and the loop claims more as slots free up, never
waiting for a batch's slowest; and a webhook has at most PER_WEBHOOK attempts in flight per
worker, so one slow receiver's backlog cannot take every slot."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
from standardwebhooks import Webhook as Signer

from tass.core.db import SessionFactory
from tass.core.netguard import (
    AddressRefused,
    LookupTimedOut,
    Resolver,
    Target,
    bounded,
    check_url,
    parse_networks,
)
from tass.core.netguard import system_resolver as default_resolver
from tass.core.settings import Settings, get_settings
from tass.core.webhooks import AttemptResult, DueEvent, claim_due, prune_settled, record_attempt
from tass.worker.context import worker_sessions
from tass.worker.deadline_http import Deadline, DeadlineTransport

log = logging.getLogger(__name__)
SLOTS = 16  # attempts in flight per worker
PER_WEBHOOK = 2  # of which for any one webhook
LEASE_MARGIN_SECONDS = 30.0  # a claim outlives its attempt's deadline by this much
PRUNE_INTERVAL_SECONDS = 3600.0
USER_AGENT = "tass-webhooks/0.1"


def signed_headers(event: DueEvent, body: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: id, timestamp and `v1,<base64 HMAC-SHA256>`."""
    return {
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Signer(event.secret).sign(event.event_id, now, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def pinned_request(target: Target, headers: dict[str, str], body: str) -> httpx.Request:
    """A POST to the first checked address (never a second lookup a DNS answer could change),
    with the original Host header and, for https, the original name for SNI and the
    certificate check."""
    url = httpx.URL(target.url).copy_with(host=target.addresses[0])
    netloc = target.host if ":" not in target.host else f"[{target.host}]"
    default_port = 443 if target.scheme == "https" else 80
    host_header = netloc if target.port == default_port else f"{netloc}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return httpx.Request(
        "POST",
        url,
        content=body.encode(),
        headers={**headers, "host": host_header},
        extensions=extensions,
    )


def send(
    event: DueEvent,
    settings: Settings,
    resolver: Resolver,
    lookups: ThreadPoolExecutor | None = None,
) -> AttemptResult:
    """One attempt, over by webhook_timeout_seconds in all: the outcome, whatever happened
    (this never raises). The name lookup runs on `lookups` (default: the process's)."""
    deadline = Deadline(settings.webhook_timeout_seconds)
    started = time.perf_counter()
    try:
        lookup = bounded(resolver, deadline.left(None, LookupTimedOut), lookups)
        target = check_url(event.url, parse_networks(settings.webhook_allow_networks), lookup)
    except AddressRefused as exc:
        return AttemptResult(None, None, f"refused: {exc}")
    except LookupTimedOut as exc:
        return AttemptResult(None, _ms_since(started), f"timed out: {exc}")
    body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True)
    request = pinned_request(target, signed_headers(event, body, datetime.now(timezone.utc)), body)
    try:
        with httpx.Client(
            transport=DeadlineTransport(deadline),
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            response = client.send(request, stream=True)  # the answer's body is never read
            response.close()
    except httpx.TimeoutException:
        return AttemptResult(None, _ms_since(started), "timed out")
    except httpx.HTTPError as exc:
        return AttemptResult(None, _ms_since(started), f"{type(exc).__name__}: {exc}"[:500])
    code = response.status_code
    error = None if 200 <= code < 300 else f"HTTP {code}"
    return AttemptResult(code, _ms_since(started), error)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def lease_seconds(settings: Settings) -> float:
    return settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS


def deliver(
    factory: SessionFactory,
    settings: Settings,
    resolver: Resolver,
    event: DueEvent,
    lookups: ThreadPoolExecutor | None = None,
) -> None:
    """Send one claimed event and record the attempt."""
    result = send(event, settings, resolver, lookups)
    with factory.begin() as session:
        outcome = record_attempt(
            session,
            event,
            result,
            first_retry_seconds=settings.webhook_first_retry_seconds,
            retry_for_seconds=settings.webhook_retry_for_seconds,
        )
    if result.error:
        log.info("webhook event %s: %s (%s)", event.event_id, result.error, outcome)


def deliver_due(
    factory: SessionFactory, settings: Settings, resolver: Resolver = default_resolver
) -> int:
    """Claim and send one batch of due events, one after another (tests, tools); returns
    how many."""
    with factory.begin() as session:
        events = claim_due(session, limit=SLOTS, lease_seconds=lease_seconds(settings))
    for event in events:
        deliver(factory, settings, resolver, event)
    return len(events)


class Deliverer:
    """Sends due events on `slots` threads without waiting for any one of them: each pass
    claims only as many events as slots are free, and none of a webhook that still has an
    attempt in flight here (at most `per_webhook` are claimed for it at once)."""

    def __init__(
        self,
        factory: SessionFactory,
        settings: Settings,
        resolver: Resolver = default_resolver,
        *,
        slots: int = SLOTS,
        per_webhook: int = PER_WEBHOOK,
    ) -> None:
        self.factory, self.settings, self.resolver = factory, settings, resolver
        self.slots, self.per_webhook = slots, per_webhook
        self._pool = ThreadPoolExecutor(slots, thread_name_prefix="tass-webhook")
        # a lookup thread per slot and as many again: lookups a silent nameserver holds past
        # their attempt's deadline do not leave the other webhooks' lookups queued
        self._lookups = ThreadPoolExecutor(2 * slots, thread_name_prefix="tass-webhook-dns")
        self._in_flight: Counter[str] = Counter()  # webhook id -> attempts being sent
        self._lock = threading.Lock()

    def in_flight(self) -> int:
        with self._lock:
            return sum(self._in_flight.values())

    def run_once(self) -> int:
        """Claim what the free slots can take and start sending it; returns how many."""
        with self._lock:
            free = self.slots - sum(self._in_flight.values())
            busy = set(self._in_flight)
        if free <= 0:
            return 0
        with self.factory.begin() as session:
            events = claim_due(
                session,
                limit=free,
                lease_seconds=lease_seconds(self.settings),
                per_webhook=self.per_webhook,
                skip_webhooks=busy,
            )
        for event in events:
            with self._lock:
                self._in_flight[event.webhook_id] += 1
            self._pool.submit(self._send, event)
        return len(events)

    def _send(self, event: DueEvent) -> None:
        try:
            deliver(self.factory, self.settings, self.resolver, event, self._lookups)
        except Exception:  # the claim's lease ends and another pass retries it
            log.exception("webhook event %s: recording the attempt failed", event.event_id)
        finally:
            with self._lock:
                self._in_flight[event.webhook_id] -= 1
                if self._in_flight[event.webhook_id] <= 0:
                    del self._in_flight[event.webhook_id]

    def close(self) -> None:
        """Wait for the attempts in flight (each ends by its deadline)."""
        self._pool.shutdown(wait=True)
        self._lookups.shutdown(wait=False, cancel_futures=True)


def prune(factory: SessionFactory, settings: Settings) -> None:
    try:
        with factory.begin() as session:
            removed = prune_settled(session, settings.webhook_keep_days * 86400)
        if removed:
            log.info("pruned %d settled webhook events", removed)
    except Exception:
        log.exception("pruning webhook events failed; retrying later")


def delivery_loop(stop: threading.Event) -> None:
    """Deliver until `stop` is set, checking the outbox every webhook_poll_seconds (at once
    while there is more to claim)."""
    settings = get_settings()
    with worker_sessions(settings) as factory:
        _deliver_until_stopped(stop, factory, settings)


def _deliver_until_stopped(
    stop: threading.Event, factory: SessionFactory, settings: Settings
) -> None:
    deliverer = Deliverer(factory, settings)
    prune_due = time.monotonic()
    try:
        while not stop.is_set():
            if time.monotonic() >= prune_due:
                prune_due = time.monotonic() + PRUNE_INTERVAL_SECONDS
                prune(factory, settings)
            try:
                started = deliverer.run_once()
            except Exception:
                log.exception("webhook delivery pass failed; retrying")
                started = 0
            if not started:
                stop.wait(settings.webhook_poll_seconds)
    finally:
        deliverer.close()


def start_webhook_delivery(stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=delivery_loop, args=(stop,), name="tass-webhook-delivery", daemon=True
    )
    thread.start()
    return thread
