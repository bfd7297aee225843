"""An item edited in place (htmx): the page's other figures of the dataset
version follow the new version without a reload."""

import re

import pytest
from playwright.sync_api import Page, expect

from datasets_app import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_inline_edit_updates_the_header_version_and_the_version_selector(logged_in: Page, site, project):
    page = logged_in
    dataset = services.dataset_create(project=project, name="Versions")
    services.items_bulk_create(dataset=dataset, items=[{"input": "a"}, {"input": "b"}])
    services.item_create(dataset=dataset, input="c")
    dataset.refresh_from_db()
    assert dataset.version == 2

    page.goto(f"{site}{dataset.get_absolute_url()}")
    header = page.locator(".page-head .meta")
    selector = page.get_by_label("Version", exact=True)
    expect(header).to_contain_text(re.compile(r"version 2\b"))
    expect(selector.locator("option")).to_have_text(["v2 (current)", "v1"])
    page.evaluate("window.__notReloaded = true")

    row = page.locator("#items-table tbody tr", has_text='"a"')
    row.get_by_role("link", name="Edit").click()
    page.locator("tr.editing").get_by_label("Input:").fill('"a, edited"')
    page.locator("tr.editing").get_by_role("button", name="Save").click()

    expect(page.locator("#items-table")).to_contain_text('"a, edited"')
    expect(header).to_contain_text(re.compile(r"version 3\b"))
    expect(selector.locator("option")).to_have_text(["v3 (current)", "v2", "v1"])
    expect(selector).to_have_value("3")
    expect(page.locator("#items-table caption")).to_have_text(re.compile(r"at version 3$"))
    assert page.evaluate("window.__notReloaded") is True, "updated in place, not by a reload"
    expect(page.locator("template")).to_have_count(0)  # the out-of-band wrapper is not left behind

    # The swapped-in selector still works: v2 shows the item as it was.
    selector.select_option("2")
    expect(page.locator("#items-table")).to_contain_text("Showing the items as they were at version 2")
    expect(page.locator("#items-table")).to_contain_text('"a"')
    expect(page.locator("#items-table")).not_to_contain_text("a, edited")
