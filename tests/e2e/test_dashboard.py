"""The dashboard in a real browser: Playwright driving Debian's chromium against uvicorn.

Data is seeded straight into a migrated SQLite database (no worker, no TensorFlow); the
browser logs in through the form and reads everything through the /v1 API with the cookie."""

from __future__ import annotations

import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tass.core.models import Job
from tass.core.objectstore import ObjectStore
from tests.e2e.dashboard_data import (
    CLASS_NAMES,
    EPOCHS,
    HOSTILE_NAME,
    MODEL_BYTES,
    WORKER,
    Seeded,
    advance_running_job,
    finish_running_job,
    forget_job,
    running_evaluation,
    seed,
    set_phase,
)
from tests.support.dashboard_site import dashboard_site

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("TASS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000

import playwright.sync_api as playwright_api  # noqa: E402 - the dev extra installs it

expect = playwright_api.expect
# no skip: scripts/setup.sh installs chromium, and a missing browser must fail the run
assert Path(CHROMIUM).exists(), f"no chromium at {CHROMIUM}: run scripts/setup.sh cpu,dev"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    """uvicorn over a seeded SQLite database; the test keeps a session factory to it."""

    def seeded(factory, root):
        store = ObjectStore((root / "artifacts").as_uri())
        return {"data": seed(factory, store), "store": store}

    root = tmp_path_factory.mktemp("dashboard")
    with dashboard_site(root, seeded, {"TASS_SSE_POLL_SECONDS": "0.2"}) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        # Playwright gives each launch a fresh, temporary user-data dir; nothing is downloaded.
        instance = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield instance
        instance.close()


def _new_context(browser, site):
    context = browser.new_context(
        base_url=site["url"], viewport={"width": 1440, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture(scope="module")
def logged_in(browser, site) -> Iterator[object]:
    """A browser context logged in through the form (its cookie serves every later page)."""
    context = _new_context(browser, site)
    page = context.new_page()
    page.goto("/dashboard/login")
    page.get_by_label("API key").fill(site["data"].key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(logged_in, site, tmp_path) -> Iterator[object]:
    """A fresh tab; fails the test on any JS error, CSP violation or failed request."""
    tab = logged_in.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    tab.on(
        "response",
        lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    yield tab
    tab.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    tab.close()
    assert not problems, "\n".join(problems) + "\n" + site["service"].log_tail()


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def api(site) -> httpx.Client:
    return httpx.Client(
        base_url=site["url"],
        headers={"Authorization": f"Bearer {site['data'].key}"},
        timeout=10,
    )


# ---------------------------------------------------------------------------------------------


def test_login_refuses_a_wrong_key_then_sets_an_httponly_cookie(browser, site):
    context = _new_context(browser, site)
    try:
        page = context.new_page()
        data: Seeded = site["data"]
        page.goto(f"/dashboard/jobs/{data.baseline}")
        expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))

        page.get_by_label("API key").fill("tass_000000000000_" + "x" * 43)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("Invalid or revoked API key")
        assert data.key not in page.content()

        page.get_by_label("API key").fill(data.key)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(rf"/dashboard/jobs/{data.baseline}$"))
        expect(page.locator("#job-title")).to_contain_text("baseline-alexnet")
        assert data.key not in page.content()

        (cookie,) = [c for c in context.cookies() if c["name"] == "tass_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert page.evaluate("document.cookie") == ""

        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(re.compile(r"/dashboard/login$"))
        assert not [c for c in context.cookies() if c["name"] == "tass_session"]
        page.goto("/dashboard/workers")
        expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    finally:
        context.close()


def test_jobs_table_lists_filters_and_escapes(page, site, tmp_path):
    data: Seeded = site["data"]
    page.goto("/dashboard")
    rows = page.locator("#jobs-body tr")
    expect(rows).to_have_count(6)
    baseline = page.locator(f'tr[data-job-id="{data.baseline}"]')
    expect(baseline.get_by_role("link", name="baseline-alexnet")).to_be_visible()
    expect(baseline.locator(".status")).to_have_text("succeeded")
    expect(baseline.locator(".epoch-label")).to_have_text(f"{EPOCHS} / {EPOCHS}")
    expect(baseline.locator("[data-best-for]")).to_have_text(re.compile(r"^\d+\.\d%$"))
    running = page.locator(f'tr[data-job-id="{data.running}"]')
    expect(running.locator(".epoch-label")).to_have_text(f"2 / {EPOCHS}")
    expect(running.locator("td").nth(9)).to_have_text(re.compile(r"\d+m"))  # ETA

    # the HTML job name and tags are shown as text, never parsed
    hostile = page.locator(f'tr[data-job-id="{data.hostile}"]')
    expect(hostile.get_by_role("link", name=HOSTILE_NAME)).to_be_visible()
    expect(hostile.locator(".tags li")).to_have_text("<script>=</td><b>x</b>")
    assert hostile.locator("img, b, script").count() == 0
    assert page.evaluate("window.__pwned") is None
    shot(page, tmp_path, "jobs")

    page.get_by_label("Status", exact=True).select_option("queued")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", data.queued)
    expect(page).to_have_url(re.compile(r"status=queued"))

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Tag", exact=True).fill("sweep=b")
    page.get_by_label("Tag", exact=True).press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", data.wider)

    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Type", exact=True).select_option("evaluate")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-best-for]")).to_have_text(re.compile(r"\(eval\)"))


def test_workers_page_shows_workers_and_queues(page, site, tmp_path):
    data: Seeded = site["data"]
    page.goto("/dashboard/workers")
    worker = page.locator(f'#workers-table tr[data-worker="{WORKER}"]')
    expect(worker).to_contain_text("node7")
    expect(worker.locator(".device")).to_have_text("GPU")
    expect(worker).to_contain_text("NVIDIA H100")
    expect(worker.locator(".status")).to_have_text("alive")
    expect(worker).to_contain_text("evaluate, train")
    current = worker.get_by_role("link")
    expect(current).to_have_attribute("href", f"/dashboard/jobs/{data.running}")
    expect(page.locator('#queues-table tr[data-queue="train"] td')).to_have_text("1")
    expect(page.locator('#queues-table tr[data-queue="evaluate"] td')).to_have_text("0")
    shot(page, tmp_path, "workers")


def test_queue_page_shows_waiting_jobs_with_reasons_and_pools(page, site, tmp_path):
    data: Seeded = site["data"]
    with site["db"].begin() as session:
        job = session.get(Job, data.queued)
        job.queue_position, job.pending_reason = 1, "no worker in pool a100 has 2 free GPUs"
        job.priority, job.resources = 2, {"gpus": 2, "workers": 1, "pool": "a100"}
    page.goto("/dashboard/queue")
    waiting = page.locator(f'#waiting-table tr[data-job-id="{data.queued}"]')
    expect(waiting.locator("td").first).to_have_text("1")
    expect(waiting.locator(".priority")).to_have_text("high")
    expect(waiting).to_contain_text("2 GPUs @a100")
    expect(waiting.locator(".reason")).to_have_text("no worker in pool a100 has 2 free GPUs")
    expect(waiting.get_by_role("link")).to_have_attribute("href", f"/dashboard/jobs/{data.queued}")
    expect(page.locator('#pools-table tr[data-pool="a100"] td').nth(4)).to_have_text("1")
    worker = page.locator(f'#pools-table tr[data-worker="{WORKER}"]')
    expect(worker).to_contain_text("1 GPU")
    expect(page.locator('#pools-table tr[data-pool="default"]')).to_be_visible()
    shot(page, tmp_path, "queue")


def test_training_job_shows_curves_hyperparameters_and_files(page, site, tmp_path):
    data: Seeded = site["data"]
    page.goto(f"/dashboard/jobs/{data.baseline}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    for chart, names in {
        "#chart-loss": ["train loss", "validation loss"],
        "#chart-accuracy": ["train accuracy", "validation accuracy"],
    }.items():
        for name in names:
            series = page.locator(f'{chart} g.series[data-series="{name}"]')
            expect(series.locator("polyline")).to_have_attribute("data-points", str(EPOCHS))
            expect(series.locator("circle")).to_have_count(EPOCHS)
            points = series.locator("polyline").get_attribute("points")
            assert len(points.split()) == EPOCHS
    steps = page.locator("#chart-steps g.series polyline")
    expect(steps).to_have_attribute("data-points", str(data.step_rows))

    hp = page.locator("#hp-table")
    expect(hp.locator("tr", has=page.locator("th", has_text="learning_rate"))).to_contain_text(
        "0.003"
    )
    expect(
        hp.locator("tr", has=page.locator("th", has_text="augmentation.crop_padding"))
    ).to_be_visible()

    artifacts = page.locator("#artifacts-table tbody tr")
    expect(artifacts).to_have_count(4)
    keras = page.locator('#artifacts-table tr[data-kind="model-keras"]')
    expect(keras).to_contain_text(data.model_sha256)
    link = keras.get_by_role("link", name="Download keras")
    href = link.get_attribute("href")
    assert href == f"/v1/models/{data.model_id}/download?format=keras"
    download = page.request.get(href)  # the browser's cookie authorises the download
    assert download.status == 200 and download.body() == MODEL_BYTES
    expect(page.locator("#timeline li")).to_have_count(3)
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#error-section")).to_be_hidden()
    shot(page, tmp_path, "job")


def test_failed_job_shows_its_error(page, site):
    page.goto(f"/dashboard/jobs/{site['data'].failed}")
    expect(page.locator("#error-text")).to_have_text(re.compile(r"^ResourceExhaustedError: OOM"))
    expect(page.locator("#job-title")).to_contain_text(HOSTILE_NAME)
    assert page.evaluate("window.__pwned") is None


def test_a_running_job_shows_each_phase_as_it_changes(page, site):
    data: Seeded = site["data"]
    factory = site["db"]
    set_phase(factory, data.running, "compiling")
    page.goto(f"/dashboard/jobs/{data.running}")
    phase = page.locator("#progress-box #job-phase")
    expect(phase).to_have_text("compiling")
    expect(page.locator("#progress-box")).not_to_contain_text("ETA")  # not training yet
    set_phase(factory, data.running, "training")  # arrives through the event stream
    expect(phase).to_have_text("training")
    expect(page.locator("#progress-box")).to_contain_text("ETA")
    set_phase(factory, data.running, "exporting")
    expect(phase).to_have_text("exporting model")
    expect(page.locator("#progress-box")).not_to_contain_text("ETA")
    set_phase(factory, data.running, "training")

    evaluation = running_evaluation(factory, data.model_id)
    try:
        page.goto(f"/dashboard/jobs/{evaluation}")
        expect(phase).to_have_text("loading data")
        set_phase(factory, evaluation, "evaluating")
        expect(phase).to_have_text("evaluating")
        finish_running_job(factory, evaluation)
        expect(page.locator("#job-status")).to_have_text("succeeded")
        expect(phase).to_have_count(0)
    finally:
        page.goto("about:blank")  # its log follow would 404 once the job is gone (correctly)
        forget_job(factory, evaluation)


def test_a_failed_jobs_page_shows_the_tail_of_its_log(page, site):
    from tass.core.job_logs import LogLine, store_chunk

    data: Seeded = site["data"]
    lines = [LogLine(f"2026-12-07T10:00:{n:02d}.000Z", "stdout", f"step {n}") for n in range(40)]
    lines += [
        LogLine("2026-12-07T10:01:00.000Z", "stderr", "Traceback (most recent call last):"),
        LogLine("2026-12-07T10:01:00.000Z", "stderr", "OOM <img src=x onerror=window.__pwned=1>"),
    ]
    store_chunk(site["db"], site["store"], data.failed, 1, 0, lines)
    page.goto(f"/dashboard/jobs/{data.failed}")
    log = page.locator("#logs")
    expect(log).to_contain_text("Traceback (most recent call last):")
    expect(page.locator("#logs .log-stderr").last).to_have_text(
        "OOM <img src=x onerror=window.__pwned=1>\n"
    )
    expect(page.locator("#logs .log-attempt")).to_have_text("── attempt 1 ──\n")
    # opened at the tail: the traceback is in view
    assert page.evaluate(
        "(b => b.scrollTop + b.clientHeight >= b.scrollHeight - 8)(document.getElementById('logs'))"
    )
    assert page.evaluate("window.__pwned") is None


def test_running_job_curves_follow_the_event_stream(page, site):
    data: Seeded = site["data"]
    page.goto(f"/dashboard/jobs/{data.running}")
    val_acc = page.locator('#chart-accuracy g.series[data-series="validation accuracy"] circle')
    expect(val_acc).to_have_count(2)
    expect(page.locator("#live-state")).to_have_text("● live")
    advance_running_job(site["db"], data.running, 3)
    expect(val_acc).to_have_count(3)
    finish_running_job(site["db"], data.running)
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#timeline li").last).to_contain_text("succeeded")


def test_evaluation_shows_the_confusion_matrix_heatmap(page, site, tmp_path):
    page.goto(f"/dashboard/jobs/{site['data'].evaluation}")
    cells = page.locator("#cm-table td.cm-cell")
    expect(cells).to_have_count(100)
    headers = page.locator("#cm-table thead th.cm-col")
    assert headers.all_inner_texts() == CLASS_NAMES
    assert page.locator("#cm-table tbody th").all_inner_texts() == CLASS_NAMES
    assert cells.nth(0).inner_text() == "80"
    colours = {c.evaluate("e => getComputedStyle(e).backgroundColor") for c in cells.all()[:12]}
    assert len(colours) > 1, "cells are shaded by their count"
    expect(page.locator("#per-class-table tbody tr")).to_have_count(10)
    expect(page.locator("#eval-head")).to_contain_text("Accuracy")
    expect(page.locator("#curves-section")).to_be_hidden()
    expect(page.locator("#summary")).to_contain_text("trained by baseline-alexnet")
    shot(page, tmp_path, "evaluation")


def test_cancel_a_queued_job_from_its_page(page, site):
    data: Seeded = site["data"]
    page.goto(f"/dashboard/jobs/{data.queued}")
    expect(page.locator("#job-status")).to_have_text("queued")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-status")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()
    with api(site) as client:
        assert client.get(f"/v1/jobs/{data.queued}").json()["status"] == "cancelled"


def test_compare_two_training_jobs(page, site, tmp_path):
    data: Seeded = site["data"]
    page.goto("/dashboard")
    compare = page.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    page.get_by_label("Select baseline-alexnet for comparison").check()
    page.get_by_label("Select wider-alexnet for comparison").check()
    expect(compare).to_be_enabled()
    compare.click()
    expect(page).to_have_url(re.compile(r"/dashboard/compare\?ids="))
    assert set(page.url.split("ids=")[1].replace("%2C", ",").split(",")) == {
        data.baseline,
        data.wider,
    }
    lines = page.locator("#cmp-val-accuracy polyline")
    expect(lines).to_have_count(2)
    for i in range(2):
        expect(lines.nth(i)).to_have_attribute("data-points", str(EPOCHS))
    expect(page.locator("#cmp-val-loss polyline")).to_have_count(2)
    diff = page.locator("#cmp-diff tbody tr")
    assert sorted(diff.evaluate_all("rows => rows.map(r => r.dataset.param)")) == [
        "learning_rate",
        "width",
    ]
    shot(page, tmp_path, "compare")


def test_pages_work_from_the_keyboard(page, site):
    page.goto("/dashboard")
    expect(page.locator("#jobs-body tr")).to_have_count(6)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('pick')"):
            break
    else:
        pytest.fail("no job checkbox reachable with Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focused controls show a focus ring"


def test_server_side_guards(site):
    """Without a browser: redirects, no open redirect, cross-site login refused, headers."""
    key = site["data"].key
    with httpx.Client(base_url=site["url"], timeout=10) as client:
        response = client.get("/dashboard/compare?ids=a,b")
        assert response.status_code == 303
        assert (
            response.headers["location"]
            == "/dashboard/login?next=%2Fdashboard%2Fcompare%3Fids%3Da%2Cb"
        )

        for target in ("//evil.example/x", "https://evil.example", "/v1/jobs", "/dashboard\\x"):
            response = client.post("/dashboard/login", data={"api_key": key, "next": target})
            assert response.status_code == 303 and response.headers["location"] == "/dashboard"
        client.cookies.clear()

        response = client.post(
            "/dashboard/login",
            data={"api_key": key},
            headers={"Origin": "http://evil.example"},
        )
        assert response.status_code == 403 and "tass_session" not in response.headers.get(
            "set-cookie", ""
        )

        client.cookies.set("tass_session", key)  # the API key itself is no session
        assert client.get("/dashboard").status_code == 303
        client.cookies.clear()
        login = client.post("/dashboard/login", data={"api_key": key})
        assert login.status_code == 303 and key not in login.headers["set-cookie"]
        page = client.get("/dashboard")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert key not in page.text
        script = client.get("/dashboard/static/common.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    """Another port of the same host: a page that auto-submits a text/plain form (no CORS
    preflight) to cancel a job with whatever cookie the browser attaches."""

    target = ""

    def do_GET(self) -> None:
        body = (
            f'<form method="POST" action="{self.target}" enctype="text/plain">'
            '<input name="x" value="y"></form><script>document.forms[0].submit()</script>'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_page_on_another_port_cannot_act_with_the_session(logged_in, site):
    with api(site) as client:
        job = client.post(  # the site's one live worker is a GPU worker: ask for its GPU
            "/v1/jobs",
            json={"type": "train", "dataset": {"source": "synthetic"}, "resources": {"gpus": 1}},
        )
        job_id = job.json()["id"]
    handler = type(
        "Attacker", (_AttackerPage,), {"target": f"{site['url']}/v1/jobs/{job_id}/cancel"}
    )
    attacker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=attacker.serve_forever, daemon=True)
    thread.start()
    tab = logged_in.new_page()
    try:
        cancels: list[int] = []
        tab.on("response", lambda r: cancels.append(r.status) if "/cancel" in r.url else None)
        with tab.expect_response(lambda r: "/cancel" in r.url):
            tab.goto(f"http://127.0.0.1:{attacker.server_address[1]}/")
        assert cancels == [403]
        with api(site) as client:
            assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    finally:
        tab.close()
        attacker.shutdown()
        attacker.server_close()
        thread.join(5)
