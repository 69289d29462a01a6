"""Webhook delivery from the outbox, on a thread of its own in each worker's main process (so a
slow receiver never delays heartbeats, the reaper or a job): claim due events, check the URL's
addresses again, POST the JSON payload signed by the Standard Webhooks library to a checked
address, and record the attempt. Any worker may deliver any event; the claim keeps two from
sending the same attempt, and the outbox keeps events across restarts."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
from standardwebhooks import Webhook as Signer

from tass.core.db import SessionFactory, make_engine, make_session_factory
from tass.core.netguard import AddressRefused, Resolver, Target, check_url, parse_networks
from tass.core.netguard import system_resolver as default_resolver
from tass.core.settings import Settings, get_settings
from tass.core.webhooks import AttemptResult, DueEvent, claim_due, prune_settled, record_attempt

log = logging.getLogger(__name__)
BATCH = 16
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


def send(event: DueEvent, settings: Settings, resolver: Resolver) -> AttemptResult:
    """One attempt: the outcome, whatever happened (this never raises)."""
    try:
        target = check_url(event.url, parse_networks(settings.webhook_allow_networks), resolver)
    except AddressRefused as exc:
        return AttemptResult(None, None, f"refused: {exc}")
    body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True)
    request = pinned_request(target, signed_headers(event, body, datetime.now(timezone.utc)), body)
    started = time.perf_counter()
    try:
        with httpx.Client(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
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


def deliver_due(
    factory: SessionFactory,
    settings: Settings,
    resolver: Resolver = default_resolver,
    pool: ThreadPoolExecutor | None = None,
) -> int:
    """Claim and send one batch of due events (in parallel on `pool`); returns how many."""
    lease = settings.webhook_timeout_seconds + 30
    with factory.begin() as session:
        events = claim_due(session, limit=BATCH, lease_seconds=lease)
    if not events:
        return 0

    def deliver(event: DueEvent) -> None:
        result = send(event, settings, resolver)
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

    if pool is None:
        for event in events:
            deliver(event)
    else:
        list(pool.map(deliver, events))
    return len(events)


def prune(factory: SessionFactory, settings: Settings) -> None:
    try:
        with factory.begin() as session:
            removed = prune_settled(session, settings.webhook_keep_days * 86400)
        if removed:
            log.info("pruned %d settled webhook events", removed)
    except Exception:
        log.exception("pruning webhook events failed; retrying later")


def delivery_loop(stop: threading.Event) -> None:
    """Deliver until `stop` is set, checking the outbox every webhook_poll_seconds."""
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    prune_due = time.monotonic()
    with ThreadPoolExecutor(max_workers=BATCH, thread_name_prefix="tass-webhook") as pool:
        while not stop.is_set():
            if time.monotonic() >= prune_due:
                prune_due = time.monotonic() + PRUNE_INTERVAL_SECONDS
                prune(factory, settings)
            try:
                sent = deliver_due(factory, settings, pool=pool)
            except Exception:
                log.exception("webhook delivery pass failed; retrying")
                sent = 0
            if not sent:
                stop.wait(settings.webhook_poll_seconds)
    engine.dispose()


def start_webhook_delivery(stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=delivery_loop, args=(stop,), name="tass-webhook-delivery", daemon=True
    )
    thread.start()
    return thread
