"""The dashboard's models page in a real browser (Playwright + Debian's chromium; uvicorn and
the serving process over a seeded SQLite database): registry names with versions, aliases,
lineage and downloads, and the predict box answering from the serving process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tass.core.objectstore import ObjectStore
from tass.core.registry import get_registered, register_version, set_alias
from tass.operators.service import serve_command
from tests.support.browser import expect, logged_in_page
from tests.support.dashboard_site import dashboard_site, seed_key
from tests.support.models import png, random_pixels, tiny_model_file
from tests.support.processes import Service, free_port, wait_http
from tests.support.seed import seed_trained_model

pytestmark = pytest.mark.integration


CLASSES = ["cat", "dog", "frog"]


def seed_registry(factory, root: Path) -> list[str]:
    store = ObjectStore((root / "artifacts").as_uri())
    with factory() as session:
        models = [
            seed_trained_model(
                session,
                store,
                tiny_model_file(root, CLASSES, seed).read_bytes(),
                tenant="acme",
                class_names=CLASSES,
                metrics={"val_accuracy": 0.5 + seed / 10},
            )
            for seed in (1, 2)
        ]
        for model in models:
            register_version(session, "acme", "cats", model)
        set_alias(session, get_registered(session, "acme", "cats"), "production", 2)
        session.commit()
        return [m.id for m in models]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    def seeded(factory, root):
        return {**seed_key(factory, root), "models": seed_registry(factory, root)}

    root = tmp_path_factory.mktemp("dashboard-models")
    serve_port = free_port()
    env = {"TASS_SERVE_URL": f"http://127.0.0.1:{serve_port}"}
    with dashboard_site(root, seeded, env) as running:
        command = serve_command("127.0.0.1", serve_port)
        serving = Service("serving", command, running["env"], root)
        try:
            wait_http(f"http://127.0.0.1:{serve_port}/healthz", serving, timeout=120)
            yield running
        finally:
            serving.stop()


@pytest.fixture(scope="module")
def page(site) -> Iterator[object]:
    service = site["service"]
    with logged_in_page(site["url"], site["key"], service.log_tail, 20_000) as tab:
        yield tab


def test_the_models_page_shows_versions_aliases_lineage_and_downloads(page, site):
    first, second = site["models"]
    page.goto("/dashboard")
    page.get_by_role("link", name="Models").click()
    section = page.locator("section.registered[data-name='cats']")
    expect(section.locator("h2")).to_have_text("cats")
    newest = section.locator(f"tr[data-model-id='{second}']")
    expect(newest).to_contain_text("production")
    expect(newest).to_contain_text("70.0%")
    download = newest.get_by_role("link", name=".keras")
    assert download.get_attribute("href").endswith(f"/v1/models/{second}/download")
    expect(section.locator(f"tr[data-model-id='{first}']")).to_contain_text("60.0%")


def test_the_predict_box_answers_from_the_serving_process(page, site):
    image = site["root"] / "photo.png"
    image.write_bytes(png(random_pixels(1, seed=3)[0]))
    page.goto("/dashboard/models")
    page.locator("#predict-model").select_option("cats@production")
    page.locator("#predict-files").set_input_files(str(image))
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#predict-status")).to_contain_text(site["models"][1][:8])
    label = page.locator("#predict-table .predicted-label")
    expect(label).to_have_count(1)
    assert label.text_content() in CLASSES
