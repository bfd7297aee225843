"""Markup in user data is shown as text, never run: on the dataset page and
on the run page (which also re-renders through htmx swaps)."""

import pytest
from playwright.sync_api import Page, expect

from datasets_app import services

from .conftest import wait_for_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>window.__injected = true; alert('xss from input')</script>"
IMAGE = '<img src="x" onerror="window.__injected = true; alert(\'xss from onerror\')">'


@pytest.fixture
def no_dialogs(logged_in: Page):
    """Fail the test on any alert/confirm/prompt the page opens."""
    dialogs = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    logged_in.on("dialog", on_dialog)
    yield logged_in
    assert dialogs == [], f"user data ran as script: {dialogs}"
    assert logged_in.evaluate("window.__injected") is None


def test_script_in_an_item_shows_as_text_on_the_dataset_and_run_pages(no_dialogs: Page, site, worker, project):
    page = no_dialogs
    dataset = services.dataset_create(project=project, name="<b>Escaped</b> dataset")
    services.items_bulk_create(
        dataset=dataset,
        items=[
            {"input": SCRIPT, "expected_output": SCRIPT},
            {"input": {"question": IMAGE}, "expected_output": "<i>tag</i>", "context": {"note": SCRIPT}},
        ],
    )

    page.goto(f"{site}{dataset.get_absolute_url()}")
    expect(page.get_by_role("heading", level=1)).to_have_text("<b>Escaped</b> dataset")
    items = page.locator("#items-table")
    expect(items.locator("tbody tr")).to_have_count(2)
    expect(items).to_contain_text(SCRIPT)
    expect(items).to_contain_text('<img src=\\"x\\" onerror=\\"window.__injected')
    expect(items).to_contain_text('"<i>tag</i>"')
    expect(page.locator("#items-table script, #items-table img, #items-table i")).to_have_count(0)

    run = services.run_start(dataset=dataset, target_type="workflow", target_id="echo", scorer_ids=["exact-match"])
    page.goto(f"{site}{run.get_absolute_url()}")
    wait_for_run(run, worker)
    results = page.locator("#run-results")
    # The rows arrive through the polled fragment: the swapped-in HTML is escaped too.
    expect(results.locator(".badge")).to_have_text("completed")
    expect(results.locator("table.results-table tbody tr")).to_have_count(2)
    expect(results).to_contain_text(SCRIPT)
    expect(results).to_contain_text('<img src=\\"x\\" onerror=\\"window.__injected')
    expect(page.locator("#run-results script, #run-results table img, #run-results table i")).to_have_count(0)
    expect(page.locator(".breadcrumbs")).to_contain_text("<b>Escaped</b> dataset")


def test_markup_in_every_text_field_stays_text_on_every_page(
    no_dialogs: Page, site, worker, project, user, django_user_model
):
    """Project, member, dataset, item, output, error and trace text, all markup, on
    every page that shows them: no element from user data, no script ran."""
    from datasets_app import projects

    page = no_dialogs
    projects.project_update(project=project, name=f"Team {IMAGE}")
    django_user_model.objects.create_user(username="x<b>y</b>", password="unused-123")
    projects.member_set(project=project, username="x<b>y</b>", role="viewer")
    dataset = services.dataset_create(project=project, name=f"Set {SCRIPT}", description=f"About {IMAGE}")
    services.items_bulk_create(
        dataset=dataset,
        items=[
            {"input": {"question": IMAGE}, "expected_output": SCRIPT},
            {"input": f"please fail {SCRIPT}", "expected_output": IMAGE},
        ],
    )
    run = services.run_start(
        dataset=dataset, target_type="workflow", target_id="fail-on-keyword", scorer_ids=["exact-match"]
    )
    wait_for_run(run, worker)
    results = list(run.results.all())
    failed = next(r for r in results if r.error)
    passed = next(r for r in results if not r.error)
    assert failed.error is not None and "fail" in failed.error

    pages = [
        "/",
        "/project/",
        dataset.get_absolute_url(),
        f"{dataset.get_absolute_url()}?tab=runs",
        run.get_absolute_url(),
        f"{run.get_absolute_url()}results/{failed.pk}/",
        f"{run.get_absolute_url()}results/{passed.pk}/",
        f"/traces/{passed.trace_id}/",
        f"{dataset.get_absolute_url()}compare/?runs={run.pk}&runs={run.pk}",
    ]
    for path in pages:
        page.goto(f"{site}{path}")
        expect(page.locator("main")).to_be_visible()
        # Nothing from user data became an element.
        assert page.locator("main script, main img[src='x'], main b:text('y')").count() == 0, path
        assert page.evaluate("window.__injected") is None, path
    page.goto(f"{site}/")
    expect(page.locator("#project-switch")).to_contain_text(f"Team {IMAGE}")
