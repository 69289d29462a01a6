"""`tass webhooks create|list|deliveries|delete` against the real API app (in process)."""

from __future__ import annotations

from tass.contract.statuses import JobStatus
from tass.worker.webhook_delivery import deliver_due
from tests.support.webhook_jobs import move, new_job
from tests.support.webhook_receiver import webhook_receiver


def test_create_list_deliveries_delete(tass_cli, db, settings):
    settings.webhook_allow_networks = ["127.0.0.1/32"]
    with webhook_receiver([]) as receiver:
        created = tass_cli("webhooks", "create", receiver.url, "-e", "job.failed")
        assert created.exit_code == 0, created.output
        webhook_id = created.stdout.split()[1]
        assert "secret: whsec_" in created.stdout
        move(db, new_job(db), JobStatus.FAILED)
        deliver_due(db, settings)
        assert len(receiver.received) == 1
    listed = tass_cli("webhooks", "list", "--json")
    assert listed.exit_code == 0 and webhook_id in listed.stdout and "whsec_" not in listed.stdout
    shown = tass_cli("webhooks", "deliveries", webhook_id)
    assert shown.exit_code == 0 and "job.failed" in shown.stdout and "200" in shown.stdout
    assert tass_cli("webhooks", "delete", webhook_id).exit_code == 0
    missing = tass_cli("webhooks", "deliveries", webhook_id)
    assert missing.exit_code != 0 and webhook_id in missing.output


def test_create_refused_url_names_the_reason(tass_cli):
    refused = tass_cli("webhooks", "create", "http://169.254.169.254/latest", "-e", "job.failed")
    assert refused.exit_code != 0 and "link-local" in refused.output
