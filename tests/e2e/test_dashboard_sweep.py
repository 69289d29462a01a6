"""The dashboard's sweep page in a real browser (Playwright + Debian's chromium, uvicorn over a
seeded SQLite database; no worker): the trials table, every trial's validation curve on one
chart, and one parameter-against-objective scatter per parameter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tass.contract.statuses import JobStatus
from tass.core.job_results import upsert_metrics
from tass.core.job_transitions import transition
from tass.core.models import utcnow
from tass.core.settings import Settings
from tass.core.sweeps import create_sweep, stop_trial, submit_trial
from tests.support.browser import expect, logged_in_page
from tests.support.dashboard_site import dashboard_site, seed_key

pytestmark = pytest.mark.integration


CONFIG = {
    "spec": {"epochs": 3, "width": 0.25},
    "dataset": {"source": "synthetic", "num_examples": 100},
    "method": "random",
    "parameters": {
        "learning_rate": {"distribution": "log_uniform", "min": 0.001, "max": 0.5},
        "dropout": {"values": [0.1, 0.3]},
    },
    "objective": {"metric": "val_accuracy", "goal": "maximize"},
    "max_trials": 3,
    "max_parallel": 3,
    "early_stopping": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},
}
TRIALS = [  # (learning_rate, dropout, val_accuracy per epoch, stopped early)
    (0.01, 0.1, [0.3, 0.5, 0.6], False),
    (0.1, 0.3, [0.4, 0.6, 0.7], False),
    (0.3, 0.1, [0.1], True),
]


def seed_sweep(factory, root: Path) -> str:
    settings = Settings(data_dir=root)
    with factory() as session:
        sweep = create_sweep(session, tenant="acme", name="seeded", config=CONFIG, tags={})
        for number, (lr, dropout, curve, stopped) in enumerate(TRIALS):
            job = submit_trial(
                session, sweep, number, {"learning_rate": lr, "dropout": dropout}, settings
            )
            transition(session, job.id, JobStatus.RUNNING, values={"started_at": utcnow()})
            for epoch, value in enumerate(curve, start=1):
                upsert_metrics(session, job.id, "epoch", epoch, {"val_accuracy": value})
            if stopped:
                stop_trial(session, job.id, "stopped early by the sweep's pruner")
        session.commit()
        return sweep.id


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    def seeded(factory, root):
        return {**seed_key(factory, root), "sweep_id": seed_sweep(factory, root)}

    with dashboard_site(tmp_path_factory.mktemp("dashboard-sweep"), seeded) as running:
        yield running


@pytest.fixture(scope="module")
def page(site) -> Iterator[object]:
    service = site["service"]
    with logged_in_page(site["url"], site["key"], service.log_tail, 10_000) as tab:
        yield tab


def test_the_sweep_page_shows_trials_curves_and_parameter_charts(page, site):
    page.goto(f"/dashboard/sweeps/{site['sweep_id']}")
    expect(page.locator("#sweep-title")).to_have_text("Sweep seeded")
    rows = page.locator("#sweep-trials tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(2)).to_contain_text("stopped early")
    expect(rows.nth(1)).to_contain_text("0.7")

    curves = page.locator("#sweep-curves polyline")
    expect(curves).to_have_count(3)
    points = curves.evaluate_all("lines => lines.map(l => Number(l.dataset.points))")
    assert points == [3, 3, 1]

    lr_chart = page.locator("#sweep-param-learning_rate")
    expect(lr_chart.locator("circle.pt")).to_have_count(3)
    expect(lr_chart.locator("polyline")).to_have_count(0)  # a scatter, not a line
    expect(page.locator("#sweep-param-dropout circle.pt")).to_have_count(3)


def test_the_sweeps_page_lists_the_sweep_and_links_to_it(page, site):
    page.goto("/dashboard")
    page.get_by_role("link", name="Sweeps").click()
    row = page.locator(f"#sweeps-table tr[data-sweep-id='{site['sweep_id']}']")
    expect(row).to_contain_text("running")
    expect(row).to_contain_text("0 / 3")
    row.get_by_role("link", name="seeded").click()
    expect(page.locator("#sweep-title")).to_have_text("Sweep seeded")


def test_the_sweep_page_leads_back_to_all_sweeps_and_its_charts_read_at_text_size(page, site):
    page.goto(f"/dashboard/sweeps/{site['sweep_id']}")
    expect(page.locator("#sweep-curves polyline")).to_have_count(3)
    sizes = page.locator("#sweep-curves text.tick, #sweep-params text.tick").evaluate_all(
        "labels => labels.map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)"
    )
    body = float(page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)"))
    assert sizes and max(sizes) <= body * 1.15, (body, max(sizes))  # not twice the text size

    back = page.locator(".crumbs a")
    expect(back).to_have_text("← All sweeps")
    back.click()
    expect(page).to_have_url(re.compile(r"/dashboard/sweeps$"))
    expect(page.locator(f"#sweeps-table tr[data-sweep-id='{site['sweep_id']}']")).to_be_visible()
