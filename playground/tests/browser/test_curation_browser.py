"""Splits in the browser: select items, "Set split…", then filter the table by the split."""

import pytest
from playwright.sync_api import Page, expect

from datasets_app import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_set_split_on_selected_items_then_filter_by_it(logged_in: Page, site, project):
    page = logged_in
    dataset = services.dataset_create(project=project, name="Questions")
    services.items_bulk_create(dataset=dataset, items=[{"input": f"question {n}"} for n in range(1, 5)])

    page.goto(f"{site}{dataset.get_absolute_url()}")
    expect(page.locator("#item-split")).to_have_count(0)  # no split yet, no filter
    rows = page.locator("#items-table tbody tr")
    rows.filter(has_text="question 2").get_by_role("checkbox").check()
    rows.filter(has_text="question 4").get_by_role("checkbox").check()

    bulk = page.locator("#bulk-form")
    bulk.get_by_text("Set split…").click()
    bulk.get_by_label("Split").fill("test")
    bulk.get_by_role("button", name="Set split", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Moved 2 items to split “test” (version 2).")
    expect(rows.filter(has_text="question 2").locator(".tag")).to_have_text("test")

    # The filter appears; choosing the split refreshes the table in place (htmx) and the address.
    page.locator("#item-split").select_option("test")
    expect(rows).to_have_count(2)
    expect(page.locator("#items-table")).to_contain_text("question 2")
    expect(page.locator("#items-table")).to_contain_text("question 4")
    expect(page.locator("#items-table")).not_to_contain_text("question 1")
    expect(page).to_have_url(f"{site}{dataset.get_absolute_url()}?tab=items&q=&version=2&split=test")

    page.locator("#item-split").select_option(label="No split")
    expect(rows).to_have_count(2)
    expect(page.locator("#items-table")).to_contain_text("question 1")
    expect(page.locator("#items-table")).not_to_contain_text("question 2")

    # Reloading keeps the filter (the address names it).
    page.reload()
    expect(page.locator("#item-split")).to_have_value("__none__")
    expect(rows).to_have_count(2)
