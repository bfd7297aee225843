"""Bulk actions on the selected items, in the browser, once the user has a second
dataset (so the "Copy to" select is on the page): export and delete still work."""

import pytest
from playwright.sync_api import Page, expect

from datasets_app import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_export_and_delete_of_selected_items_with_a_copy_target_on_the_page(logged_in: Page, site, project):
    page = logged_in
    dataset = services.dataset_create(project=project, name="Source")
    services.items_bulk_create(dataset=dataset, items=[{"input": f"question {n}"} for n in range(1, 4)])
    services.dataset_create(project=project, name="Another dataset")

    page.goto(f"{site}{dataset.get_absolute_url()}")
    expect(page.get_by_label("Copy to")).to_be_visible()  # the second dataset is offered
    rows = page.locator("#items-table tbody tr")
    rows.filter(has_text="question 1").get_by_role("checkbox").check()
    rows.filter(has_text="question 3").get_by_role("checkbox").check()

    # Export CSV downloads the two selected items (the empty "Copy to" does not block it).
    with page.expect_download() as download_info:
        page.locator("#bulk-form").get_by_role("button", name="Export CSV").click()
    download = download_info.value
    content = download.path().read_text()
    assert "question 1" in content and "question 3" in content and "question 2" not in content

    with page.expect_download() as download_info:
        page.locator("#bulk-form").get_by_role("button", name="Export JSONL").click()
    assert len(download_info.value.path().read_text().strip().splitlines()) == 2

    # Delete… asks for a confirmation, then deletes the two.
    page.locator("#bulk-form").get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete 2 items?")).to_be_visible()
    page.get_by_role("button", name="Delete 2 items").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted 2 items")
    expect(page.locator("#items-table tbody tr")).to_have_count(1)
    assert [item.input for item in dataset.items.live()] == ["question 2"]

    # Copy without a target is still stopped in the browser, before anything is sent.
    rows.filter(has_text="question 2").get_by_role("checkbox").check()
    page.locator("#bulk-form").get_by_role("button", name="Copy", exact=True).click()
    message = page.get_by_label("Copy to").evaluate("select => select.validationMessage")
    assert message, "the browser asks for a target"
    expect(page.get_by_role("heading", name="Source", level=1)).to_be_visible()
