"""The dashboard as a newcomer meets it, in a real browser (Playwright + Debian's chromium;
uvicorn over a seeded SQLite database, no worker): an unnamed job's heading, a failed job
without metrics, the jobs page on a phone, and the actions: register a trained model and alias
it, submit a training job from a form, re-run a job with its spec prefilled."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tass.contract.spec import DatasetSpec, TrainSpec
from tass.contract.statuses import JobStatus
from tass.core.apikeys import create_key
from tass.core.job_lifecycle import create_job
from tass.core.job_transitions import transition
from tass.core.models import utcnow
from tass.core.objectstore import ObjectStore
from tass.core.workers import WorkerInfo, report_alive
from tests.support.browser import CHROMIUM, expect, logged_in_page
from tests.support.dashboard_site import dashboard_site
from tests.support.seed import seed_trained_model

pytestmark = pytest.mark.integration

TENANT = "acme"
# the whole spec, as the API stores a submitted one
SPEC = TrainSpec(epochs=4, learning_rate=0.02, width=0.5, batch_size=32).model_dump(mode="json")
DATASET = DatasetSpec(source="synthetic", num_examples=500).model_dump(mode="json")


def seed(factory, store: ObjectStore) -> dict[str, str]:
    with factory() as session:
        _, key = create_key(session, TENANT)
        unnamed = create_job(
            session, job_type="train", tenant=TENANT, queue="train", dataset=DATASET, spec=SPEC
        )
        failed = create_job(
            session,
            job_type="train",
            tenant=TENANT,
            queue="train",
            dataset=DATASET,
            spec=SPEC,
            name="broken-before-epoch-1",
        )
        assert transition(session, failed.id, JobStatus.RUNNING, values={"started_at": utcnow()})
        error = "ValueError: the dataset has 1 class; training needs at least 2"
        assert transition(session, failed.id, JobStatus.FAILED, values={"error": error})
        named = create_job(
            session,
            job_type="train",
            tenant=TENANT,
            queue="train",
            dataset=DATASET,
            spec=SPEC,
            name="small-alexnet",
            tags={"team": "vision"},
        )
        model = seed_trained_model(
            session,
            store,
            b"PK\x03\x04 a keras zip" * 50,
            tenant=TENANT,
            name="trained-not-registered",
            metrics={"val_accuracy": 0.8125},
            class_names=["cat", "dog"],
        )
        evaluation = create_job(
            session,
            job_type="evaluate",
            tenant=TENANT,
            queue="evaluate",
            dataset=DATASET,
            model_id=model.id,
            name="holdout-check",
        )
        compiling = create_job(
            session,
            job_type="train",
            tenant=TENANT,
            queue="train",
            dataset=DATASET,
            spec=SPEC,
            name="still-compiling",
        )
        started = {"started_at": utcnow(), "progress": {"phase": "compiling"}}
        assert transition(session, compiling.id, JobStatus.RUNNING, values=started)
        session.commit()
        return {
            "key": key,
            "unnamed": unnamed.id,
            "failed": failed.id,
            "named": named.id,
            "model": model.id,
            "evaluation": evaluation.id,
            "compiling": compiling.id,
        }


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    def seeded(factory, root):
        return seed(factory, ObjectStore((root / "artifacts").as_uri()))

    with dashboard_site(tmp_path_factory.mktemp("dashboard-actions"), seeded) as running:
        yield running


@pytest.fixture(scope="module")
def page(site) -> Iterator[object]:
    log_tail = site["service"].log_tail
    refused = [(422, "/v1/jobs")]  # the form's invalid learning rate and GPUs, on purpose
    with logged_in_page(site["url"], site["key"], log_tail, 15_000, expected_errors=refused) as tab:
        yield tab


def api(site) -> httpx.Client:
    headers = {"Authorization": f"Bearer {site['key']}"}
    return httpx.Client(base_url=site["url"], headers=headers, timeout=10)


def test_an_unnamed_job_is_headed_untitled_with_its_id_never_null(page, site):
    page.goto(f"/dashboard/jobs/{site['unnamed']}")
    title = page.locator("#job-title")
    expect(title).to_have_text(re.compile(r"^Untitled job\s+" + site["unnamed"] + "$"))
    assert "null" not in title.inner_text() and "null" not in page.title()


def test_a_failed_job_without_metrics_shows_its_error_instead_of_empty_charts(page, site):
    page.goto(f"/dashboard/jobs/{site['failed']}")
    expect(page.locator("#error-text")).to_have_text(re.compile("training needs at least 2"))
    expect(page.locator("#curves-empty")).to_have_text(re.compile(r"^No metrics recorded"))
    expect(page.locator("#curves-empty")).to_contain_text("failed")
    expect(page.locator("#chart-loss")).to_be_hidden()
    expect(page.locator("#chart-accuracy")).to_be_hidden()


def test_re_run_is_offered_for_training_jobs_only(page, site):
    # the submit form trains: an evaluation's page must not show a Re-run that would open it
    page.goto(f"/dashboard/jobs/{site['evaluation']}")
    expect(page.locator("#job-title")).to_contain_text("holdout-check")
    expect(page.get_by_role("link", name="Re-run")).to_be_hidden()
    page.goto(f"/dashboard/jobs/{site['named']}")
    expect(page.locator("#job-title")).to_contain_text("small-alexnet")
    expect(page.get_by_role("link", name="Re-run")).to_be_visible()


def test_a_job_that_failed_before_any_progress_shows_an_empty_bar_not_a_busy_one(page, site):
    page.goto("/dashboard")
    bar = page.locator(f"#jobs-body tr[data-job-id='{site['failed']}'] progress")
    expect(bar).to_have_count(1)
    # a <progress> without a value is indeterminate: browsers animate it as work under way
    assert bar.evaluate("b => b.position") == 0  # -1 while indeterminate


def test_a_job_still_compiling_shows_its_phase_and_its_epoch_count(page, site):
    # no step has reported yet, so progress has no `epochs`: the spec has them (4)
    page.goto(f"/dashboard/jobs/{site['compiling']}")
    expect(page.locator("#job-phase")).to_have_text("compiling")
    expect(page.locator("#progress-box strong")).to_have_text("Epoch — / 4")


def test_the_pages_load_without_a_console_error(page, site):
    # a browser of its own (none has asked this server for an icon yet) that listens to the
    # console: the shared page's checks ignore a 404 for /favicon.ico, a console error here
    browser = page.context.browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
    )
    context = browser.new_context(base_url=site["url"])
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        tab.goto("/dashboard/login")
        tab.wait_for_timeout(1000)  # the browser asks for an icon after the page loads
        tab.get_by_label("API key").fill(site["key"])
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(re.compile(r"/dashboard$"))
        for path in (f"/dashboard/jobs/{site['named']}", "/dashboard/models"):
            tab.goto(path)
            expect(tab.locator("main h1")).to_be_visible()
            # a job page keeps its event stream and log follow open: the network never idles
            tab.wait_for_timeout(1500)
    finally:
        browser.close()
    assert errors == []


def test_the_pages_fit_a_phone_and_the_jobs_table_scrolls_inside_its_box(page, site):
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto("/dashboard")
        expect(page.locator("#jobs-body tr").first).to_be_visible()
        width = page.evaluate("document.documentElement.clientWidth")
        assert width == 390
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        wrap = page.locator(".table-wrap").first
        assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")  # the table scrolls inside
        expect(page.get_by_role("link", name="Workers")).to_be_in_viewport()
        expect(page.get_by_role("button", name="Log out")).to_be_in_viewport()
        for path in (f"/dashboard/jobs/{site['named']}", "/dashboard/models", "/dashboard/submit"):
            page.goto(path)
            expect(page.locator("main h1")).to_be_visible()
            # its data arrives after the page (a job page's stream and log follow stay open, so
            # the network never idles): give it a moment before measuring
            page.wait_for_timeout(1500)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    finally:
        page.set_viewport_size({"width": 1280, "height": 720})


def test_register_a_trained_model_from_the_models_page_then_alias_it(page, site):
    model = site["model"]
    page.goto("/dashboard/models")
    row = page.locator(f"#all-models tr[data-model-id='{model}']")
    expect(row).to_contain_text("trained-not-registered")
    expect(row).to_contain_text("81.3%")
    expect(row.locator(".registered-as")).to_have_text("not registered")

    row.get_by_label("Registry name").fill("pets")
    row.get_by_role("button", name="Register").click()
    section = page.locator("section.registered[data-name='pets']")
    expect(section.locator(f"tr[data-model-id='{model}'] th")).to_have_text("1")
    expect(page.locator("#models-status")).to_have_text("Registered as pets version 1.")
    expect(row.locator(".registered-as")).to_have_text("pets:1")

    section.get_by_label("Alias").fill("production")
    section.get_by_label("Version").select_option("1")
    section.get_by_role("button", name="Set alias").click()
    expect(section.locator(f"tr[data-model-id='{model}']")).to_contain_text("production")
    with api(site) as client:
        assert client.get("/v1/registry/pets").json()["aliases"] == {"production": 1}
        assert client.get("/v1/models/pets@production").json()["id"] == model


def test_submit_a_training_job_from_the_form_then_see_it_listed(page, site):
    page.goto("/dashboard")
    page.get_by_role("link", name="New job").click()
    expect(page).to_have_url(re.compile(r"/dashboard/submit$"))
    page.get_by_label("Name").fill("from-the-form")
    page.get_by_label("Data").fill("synthetic:300")
    page.get_by_label("Epochs").fill("2")
    page.get_by_label("Learning rate").fill("-1")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#submit-status")).to_contain_text("learning_rate")  # names the field

    page.get_by_label("Learning rate").fill("0.05")
    with site["db"].begin() as session:  # a live CPU worker: the form's requests are checked
        info = WorkerInfo("form-node", "localhost", 1, ["train"], "cpu", [], slots=2)
        report_alive(session, info)
    page.get_by_label("GPUs").fill("64")  # more than any live worker has: refused, not queued
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#submit-status")).to_contain_text("no live worker")
    expect(page.locator("#submit-status")).to_contain_text("64 GPUs")

    page.get_by_label("GPUs").fill("")
    page.get_by_label("Priority").select_option("high")
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/dashboard/jobs/[0-9a-f-]+$"))
    expect(page.locator("#job-title")).to_contain_text("from-the-form")
    expect(page.locator("#job-status")).to_have_text("queued")
    job_id = page.url.rsplit("/", 1)[1]

    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_contain_text("from-the-form")
    with api(site) as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["dataset"] == {**job["dataset"], "source": "synthetic", "num_examples": 300}
    assert (job["spec"]["epochs"], job["spec"]["learning_rate"]) == (2, 0.05)
    assert job["priority"] == "high" and job["resources"]["gpus"] == 0


def test_rerun_prefills_the_form_from_the_jobs_spec(page, site):
    page.goto(f"/dashboard/jobs/{site['named']}")
    page.get_by_role("link", name="Re-run").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/submit\?from={site['named']}$"))
    expect(page.get_by_label("Name")).to_have_value("small-alexnet (re-run)")
    expect(page.get_by_label("Data")).to_have_value("synthetic:500")
    expect(page.get_by_label("Epochs")).to_have_value("4")
    expect(page.get_by_label("Learning rate")).to_have_value("0.02")
    expect(page.get_by_label("Tags")).to_have_value("team=vision")
    expect(page.get_by_label("Priority")).to_have_value("normal")
    page.get_by_label("Epochs").fill("5")
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/dashboard/jobs/[0-9a-f-]+$"))
    expect(page.locator("#job-title")).to_contain_text("small-alexnet (re-run)")
    clone_id = page.url.rsplit("/", 1)[1]
    assert clone_id != site["named"]
    with api(site) as client:
        original = client.get(f"/v1/jobs/{site['named']}").json()
        clone = client.get(f"/v1/jobs/{clone_id}").json()
    assert clone["spec"] == {**original["spec"], "epochs": 5}
    assert given(clone["dataset"]) == given(original["dataset"])
    assert clone["tags"] == {"team": "vision"}


def given(fields: dict) -> dict:
    return {key: value for key, value in fields.items() if value is not None}


def test_the_new_actions_keep_the_sessions_same_origin_rule(site):
    """Registering, aliasing and submitting with the dashboard's cookie need this origin."""
    host = site["url"].split("://", 1)[1]
    with httpx.Client(base_url=site["url"], timeout=10) as browser:
        assert browser.post("/dashboard/login", data={"api_key": site["key"]}).status_code == 303
        calls = [
            ("POST", "/v1/registry/csrf/versions", {"model_id": site["model"]}),
            ("POST", "/v1/jobs", {"type": "train", "dataset": {"source": "synthetic"}}),
        ]
        for method, path, payload in calls:
            for origin in ("http://evil.example", "null", None):
                headers = {"Origin": origin} if origin else {}
                refused = browser.request(method, path, json=payload, headers=headers)
                assert refused.status_code == 403, (path, origin)
            same = browser.request(method, path, json=payload, headers={"Origin": f"http://{host}"})
            assert same.status_code in (201, 202), (path, same.text)
        alias = browser.put(
            "/v1/registry/csrf/aliases/prod",
            json={"version": 1},
            headers={"Origin": "http://evil.example"},
        )
        assert alias.status_code == 403
