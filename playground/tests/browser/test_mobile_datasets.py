"""The dataset pages on a 390 px wide phone: nothing is wider than the screen
(wide tables scroll inside their own wrapper, forms fit)."""

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from datasets_app import services
from datasets_app.tests.factories import add_result, end_run, make_run

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE: ViewportSize = {"width": 390, "height": 800}
# The elements that stick out on the right, outermost first (for the failure message):
# those outside any scroller, and absolutely placed ones (which a scroller clips only
# when it is their containing block).
OVERFLOWING = """(limit) => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.right <= limit + 0.5) continue;
    let parent = el.parentElement, inScroller = false;
    while (parent) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(parent).overflowX)) { inScroller = true; break; }
      parent = parent.parentElement;
    }
    const placed = ['absolute', 'fixed'].includes(getComputedStyle(el).position);
    if (!inScroller || placed) {
      out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')} right=${Math.round(box.right)}`);
    }
  }
  return out.slice(0, 8);
}"""


@pytest.fixture
def phone(logged_in: Page) -> Page:
    logged_in.set_viewport_size(PHONE)
    return logged_in


def assert_fits(page: Page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{what} is {width} px wide: {page.evaluate(OVERFLOWING, PHONE['width'])}"


def test_dataset_pages_fit_a_390px_screen(phone: Page, site, project, settings):
    page = phone
    # The runs below hold their chunks' leases for this test (the test process writes their
    # results): long enough that a browser test's worker process never takes them over.
    settings.PLAYGROUND_LEASE_SECONDS = 600
    dataset = services.dataset_create(
        project=project,
        name="Customer support questions with a rather long name",
        description="Questions our support agents answer every day, with the expected answers and context.",
        input_schema={"type": "object", "properties": {"question": {"type": "string"}}},
    )
    services.items_bulk_create(
        dataset=dataset,
        items=[
            {
                "input": {"question": f"How do I reset the password of my account number {n}?", "lang": "en"},
                "expected_output": {"answer": "Open Settings, then Security, then Reset password.", "steps": 3},
                "context": {"channel": "email", "customerTier": "enterprise", "delayMs": 0},
            }
            for n in range(3)
        ],
    )
    services.dataset_create(project=project, name="Another dataset")  # so that "Copy to" is offered
    run = make_run(dataset, target="agent/keyword-agent", scorer_ids=("exact-match", "contains", "levenshtein"))
    for item in dataset.items.all():
        add_result(run, item, output="Open Settings", scores={"exact-match": 0.0, "contains": 1.0, "levenshtein": 0.4})
    end_run(run)
    # A second finished run (named, tagged) so that the trends are drawn too; a third still running.
    second = make_run(
        dataset,
        target="workflow/echo",
        scorer_ids=("exact-match",),
        name="Echo with a long name",
        tags=["nightly", "baseline"],
    )
    for item in dataset.items.all():
        add_result(second, item, output="x", scores={"exact-match": 0.5}, latency=1234.0)
    end_run(second)
    make_run(dataset, target="workflow/echo", scorer_ids=("exact-match",))

    pages = {
        "datasets list": "/",
        "items tab": dataset.get_absolute_url(),
        "runs tab": f"{dataset.get_absolute_url()}?tab=runs",
        "import page": f"{dataset.get_absolute_url()}import/",
        "project settings": "/project/",
        "profile": "/profile/",
    }
    for what, path in pages.items():
        page.goto(f"{site}{path}")
        expect(page.locator("main h1")).to_be_visible()
        assert_fits(page, what)
    page.goto(f"{site}{dataset.get_absolute_url()}")
    screenshot(page, "mobile-dataset-items")
    page.goto(f"{site}{dataset.get_absolute_url()}?tab=runs")
    # The start-run form is whole: its button is on the screen, not clipped.
    button = page.get_by_role("button", name="Start run")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "mobile-dataset-runs")
