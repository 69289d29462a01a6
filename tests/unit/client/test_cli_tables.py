"""`tass datasets list|show` and `tass webhooks list|deliveries` read like the other tables:
sizes in KB/MB, times in local time to the second, never raw bytes or ISO strings."""

from __future__ import annotations

import httpx

from tass.client.render import format_time

CREATED = "2025-03-04T05:06:07.123456Z"
DATASET = {
    "id": "ds-1",
    "name": "pets",
    "status": "ready",
    "num_examples": 1000,
    "classes": ["cat", "dog"],
    "class_counts": {"train": {"cat": 500, "dog": 500}},
    "size": 16_367_337,
    "sha256": "ab" * 32,
    "archive_format": "tar.gz",
    "created_at": CREATED,
}


def test_datasets_list_and_show_give_readable_sizes_and_times(api, run):
    api.route("GET", "/v1/datasets", httpx.Response(200, json={"items": [DATASET]}))
    api.route("GET", "/v1/datasets/ds-1", httpx.Response(200, json=DATASET))

    listed = run("datasets", "list")
    shown = run("datasets", "show", "ds-1")

    assert listed.exit_code == shown.exit_code == 0, listed.output + shown.output
    assert "16.4 MB" in listed.stdout and "16367337" not in listed.stdout
    assert format_time(CREATED) in listed.stdout and "T05:06" not in listed.stdout
    assert "16.4 MB (16367337 bytes) (tar.gz)" in shown.stdout


def test_webhooks_list_and_deliveries_give_readable_times(api, run):
    hook = {
        "id": "wh-1",
        "url": "https://hooks.example/tass",
        "events": ["job.failed"],
        "description": None,
        "created_at": CREATED,
    }
    delivery = {
        "at": "2025-03-04T05:07:08Z",
        "event_id": "ev-1",
        "event_type": "job.failed",
        "attempt": 1,
        "status_code": 200,
        "latency_ms": 12.3,
        "error": None,
    }
    api.route("GET", "/v1/webhooks", httpx.Response(200, json={"items": [hook]}))
    api.route(
        "GET", "/v1/webhooks/wh-1/deliveries", httpx.Response(200, json={"items": [delivery]})
    )

    listed = run("webhooks", "list")
    deliveries = run("webhooks", "deliveries", "wh-1")

    assert listed.exit_code == deliveries.exit_code == 0, listed.output + deliveries.output
    assert format_time(CREATED) in listed.stdout and "T05:06" not in listed.stdout
    assert format_time(delivery["at"]) in deliveries.stdout
    assert "T05:07" not in deliveries.stdout
