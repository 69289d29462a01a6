"""The dashboard's datasets page in a real browser (Playwright + Debian's chromium; uvicorn over
SQLite): upload an archive with the form, see it validating, then ready with its classes (the
validation is recorded directly: no worker runs here), and delete it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tass.core.datasets import record_validation
from tests.support.archives import class_files, tar_gz, write
from tests.support.browser import expect, logged_in_page
from tests.support.dashboard_site import dashboard_site

pytestmark = pytest.mark.integration


SUMMARY = {
    "num_examples": 12,
    "classes": ["cat", "dog"],
    "class_counts": {"train": {"cat": 6, "dog": 6}},
    "image_sizes": {"32x32": 12},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    with dashboard_site(tmp_path_factory.mktemp("dashboard-datasets")) as running:
        yield running


@pytest.fixture(scope="module")
def page(site) -> Iterator[object]:
    service = site["service"]
    with logged_in_page(site["url"], site["key"], service.log_tail, 20_000) as tab:
        yield tab


def test_upload_see_it_ready_and_delete_it(page, site):
    archive = write(site["root"] / "pets.tar.gz", tar_gz(class_files()))
    page.goto("/dashboard")
    page.get_by_role("link", name="Datasets").click()
    expect(page.locator("#datasets-empty")).to_be_visible()
    page.locator("#upload-file").set_input_files(str(archive))
    page.locator("#upload-name").fill("pets")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-state")).to_contain_text("uploaded pets: validating")
    row = page.locator("#datasets-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("validating")
    dataset_id = row.get_attribute("data-dataset-id")
    with site["db"].begin() as session:
        record_validation(session, dataset_id, SUMMARY, None)
    expect(row).to_contain_text("ready", timeout=10_000)
    expect(row).to_contain_text("cat 6, dog 6")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#datasets-empty")).to_be_visible()
    assert not any((site["root"] / "artifacts" / "datasets").rglob("*.tar.gz"))
