"""The run, result, compare and Runs-tab pages in Chromium: what only a browser
shows (contrast, a sticky header, the live region, widths on a phone) and the
screenshots in docs/screenshots/."""

import re
import uuid

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from datasets_app import services
from datasets_app.tests.factories import add_result, end_run, make_run

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is 2+2?", "4"),
    ("Which is the largest planet?", "Jupiter"),
    ("Who wrote Hamlet?", "William Shakespeare"),
    ("What is the capital of Peru?", "Lima"),
    ("What is the boiling point of water in Celsius?", "100"),
]
PRICES = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
PHONE = {"width": 390, "height": 800}


def make_dataset(project, name: str, count: int):
    dataset = services.dataset_create(project=project, name=name, description="Capitals and facts")
    items: list[services.NewItem] = [
        {"input": {"question": q}, "expected_output": a, "context": {"source": "atlas", "delayMs": 0}}
        for q, a in (QUESTIONS * (count // len(QUESTIONS) + 1))[:count]
    ]
    services.items_bulk_create(dataset=dataset, items=items)
    dataset.refresh_from_db()
    return dataset


@pytest.fixture(autouse=True)
def _runs_written_here_keep_their_chunks(settings):
    """This module writes its runs' results itself (factories) and holds their chunks
    meanwhile: with the default 6 s lease a slow, shared machine let the browser
    tests' worker process take a chunk over mid-test ("lease lost")."""
    settings.PLAYGROUND_LEASE_SECONDS = 600


def answer(expected: str, n: int, quality: float) -> tuple[str, float]:
    """An output and its score: right for the first `quality` share of items, else wrong."""
    if (n * 37 % 100) / 100 < quality:
        return f"The answer is {expected}.", 1.0
    return f"The answer is probably not {expected}.", 0.0


def finished_run(dataset, *, name, quality=0.8, latency=300.0, tags=(), description="", usage=True):
    run = make_run(dataset, scorer_ids=("exact-match", "contains"), name=name, tags=list(tags), description=description)
    for n, item in enumerate(dataset.items.order_by("position")):
        output, score = answer(item.expected_output, n, quality)
        add_result(
            run,
            item,
            output=output,
            scores={"exact-match": score, "contains": min(1.0, score + 0.5 * (n % 2))},
            latency=latency * (0.7 + (n * 13 % 10) / 15),
            usage={
                "model": "gpt-4o-mini",
                "promptTokens": 120 + n,
                "completionTokens": 30 + n % 7,
                "totalTokens": 150 + n + n % 7,
            }
            if usage
            else None,
            trace_id=uuid.uuid4().hex,
        )
    end_run(run)
    return run


def contrast(page: Page, selector: str) -> float:
    """WCAG contrast of the element's text colour on its background colour."""
    return page.evaluate(
        """(selector) => {
          const style = getComputedStyle(document.querySelector(selector));
          const rgb = (text) => text.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
          const lum = ([r, g, b]) => {
            const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
          };
          const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))].sort((x, y) => y - x);
          return (a + 0.05) / (b + 0.05);
        }""",
        selector,
    )


def test_completed_named_run_with_usage(logged_in: Page, site, project, settings):
    settings.PLAYGROUND_MODEL_PRICES = PRICES
    page = logged_in
    dataset = make_dataset(project, "Capitals and facts", 40)
    run = finished_run(
        dataset,
        name="Keyword agent · prompt v2",
        tags=["prod", "nightly"],
        description="Shorter system prompt; answers in one sentence.",
    )
    page.goto(f"{site}{run.get_absolute_url()}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Keyword agent · prompt v2")
    expect(page.locator(".run-description")).to_have_text("Shorter system prompt; answers in one sentence.")
    expect(page.locator(".run-header .run-tags li")).to_have_text(["prod", "nightly"])
    breadcrumbs = page.get_by_role("navigation", name="Breadcrumb")
    expect(breadcrumbs).to_contain_text("Keyword agent · prompt v2")
    usage = page.locator(".usage-card")
    expect(usage).to_contain_text("Total tokens")
    expect(usage.locator("dd").first).to_have_text(re.compile(r"^\d{4}$"))
    expect(page.locator(".latency-card")).not_to_contain_text("No results yet.")
    expect(page.locator("#run-live-status")).to_have_text("Run completed: 40 of 40 done.")
    rows = page.locator("#run-results table.results-table tbody tr")
    expect(rows).to_have_count(40)
    expect(rows.locator(".item-link")).to_have_text([f"#{n}" for n in range(1, 41)])
    expect(rows.first.locator(".trace-link")).to_have_text(re.compile(r"^Trace …[0-9a-f]{8}$"))

    # "completed" reads at 4.5:1 or more on its badge.
    badge = "#run-results .run-status .badge-completed"
    expect(page.locator(badge)).to_have_text("completed")
    assert contrast(page, badge) >= 4.5, contrast(page, badge)

    # The header row stays at the top of the table's scrolling box.
    wrap = page.locator(".results-wrap")
    header = page.locator(".results-table thead th").first
    wrap.evaluate("(el) => { el.scrollTop = 600; }")
    page.wait_for_timeout(100)
    wrap_box, header_box = wrap.bounding_box(), header.bounding_box()
    assert wrap_box and header_box
    assert abs(header_box["y"] - wrap_box["y"]) <= 2, (wrap_box, header_box)
    wrap.evaluate("(el) => { el.scrollTop = 0; }")

    # Selecting results for "Add to dataset": one box per row, and one for them all (static/js/app.js).
    boxes = rows.locator('input[name="result_ids"]')
    expect(boxes).to_have_count(40)
    page.get_by_label("Select every result on this page").check()
    expect(boxes.and_(page.locator(":checked"))).to_have_count(40)
    page.get_by_label("Select every result on this page").uncheck()
    page.get_by_label("Select result #2", exact=True).check()
    expect(boxes.and_(page.locator(":checked"))).to_have_count(1)

    # Renaming through the form (the "Add to dataset" form has a name field too).
    page.get_by_text("Edit name, description and tags").click()
    page.locator("#run-edit-name").fill("Keyword agent · prompt v3")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Saved run “Keyword agent · prompt v3”.")
    page.get_by_label("Extra columns").fill("input.question")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".results-table thead th.extra-col")).to_have_text("input.question")
    page.goto(f"{site}{run.get_absolute_url()}")
    screenshot(page, "run-detail-completed")


def test_result_page_diff_and_neighbours(logged_in: Page, site, project):
    page = logged_in
    dataset = make_dataset(project, "Diffs", 4)
    run = finished_run(dataset, name="Diff run", quality=0.0)
    page.goto(f"{site}{run.get_absolute_url()}")
    page.locator(".item-link", has_text="#2").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Item #2")
    diff = page.locator("pre.diff")
    expect(diff.locator("ins")).to_have_text(["The answer is probably not ", "."])
    expect(page.locator("#context-heading + pre")).to_contain_text('"source": "atlas"')
    expect(page.locator(".run-meta .trace-link")).to_have_text("View trace (1 span)")
    page.locator("#result-next").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Item #3")
    page.locator("#result-prev").click()
    page.locator("#result-prev").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Item #1")
    expect(page.locator("#result-prev")).to_have_count(0)
    screenshot(page, "result-detail")


def six_runs(project):
    dataset = make_dataset(project, "Six runs", 24)
    baseline = finished_run(dataset, name="Baseline · keyword agent", quality=0.75, latency=300, tags=["prod"])
    others = [
        finished_run(dataset, name="Prompt v2", quality=0.8, latency=280, tags=["candidate"]),
        finished_run(dataset, name="Prompt v3 (shorter)", quality=0.3, latency=200, tags=["candidate"]),
        finished_run(dataset, name="Bigger model", quality=0.95, latency=650),
        finished_run(dataset, name="Temperature 0", quality=0.75, latency=310),
        finished_run(dataset, name="No usage", quality=0.7, latency=150, usage=False),
    ]
    return dataset, baseline, others


def test_six_run_compare(logged_in: Page, site, project, settings):
    settings.PLAYGROUND_MODEL_PRICES = PRICES
    page = logged_in
    dataset, baseline, others = six_runs(project)
    page.goto(f"{site}{reverse('run-compare', args=[dataset.id])}")
    page.get_by_label("Baseline").select_option(str(baseline.id))
    page.get_by_label("Compared run", exact=True).select_option(str(others[0].id))
    for n, run in enumerate(others[1:], start=2):
        page.get_by_label(f"Compared run {n} (optional)").select_option(str(run.id))
    page.get_by_role("button", name="Compare").click()
    summary = page.locator("table.compare-summary")
    expect(summary.locator("thead th.run-head")).to_have_count(6)
    expect(summary.locator("td.scorer-cell.regressed")).not_to_have_count(0)
    expect(page.locator("ul.shared-note li")).to_have_count(5)
    expect(page.locator("ul.shared-note li").first).to_contain_text("Compared on 24 items both runs have")
    expect(page.locator("table.compare-items tbody tr")).to_have_count(24)
    page.get_by_role("link", name=re.compile(r"^Regressed \(")).click()
    expect(page.locator("table.compare-items tbody tr.regressed").first).to_be_visible()
    rows = page.locator("table.compare-items tbody tr")
    assert rows.count() == page.locator("table.compare-items tbody tr.regressed").count()
    expect(rows.first.locator("pre.diff ins").first).to_be_visible()
    screenshot(page, "compare")


def test_runs_tab_trends_and_tag_filter(logged_in: Page, site, project):
    page = logged_in
    dataset = make_dataset(project, "Trends", 8)
    for n, (quality, latency) in enumerate([(0.5, 420), (0.6, 380), (0.55, 400), (0.75, 300), (0.8, 320), (0.9, 260)]):
        finished_run(dataset, name=f"Nightly {n + 1}", quality=quality, latency=latency, tags=["nightly"])
    finished_run(dataset, name="Experiment", quality=0.2, latency=900, tags=["experiment"])
    page.goto(f"{site}{dataset.get_absolute_url()}?tab=runs")
    trends = page.locator(".run-trends")
    expect(trends.get_by_role("heading")).to_have_text("Trends over the last 7 runs")
    charts = trends.get_by_role("img")
    expect(charts).to_have_count(2)
    expect(charts.first).to_have_attribute("aria-label", re.compile(r"^Mean score per run, 7 runs oldest to newest: "))
    expect(trends.locator("table.trend-values tbody tr")).to_have_count(7)
    page.get_by_role("navigation", name="Filter runs by tag").get_by_role("link", name="nightly").click()
    expect(trends.get_by_role("heading")).to_have_text("Trends over the last 6 runs tagged “nightly”")
    expect(page.locator("#runs-table .run-name-cell a")).to_have_count(6)
    first_point = trends.locator("svg.trend-chart a").first
    run_url = first_point.get_attribute("href")
    screenshot(page, "runs-trends")
    first_point.locator("circle").click()
    expect(page).to_have_url(f"{site}{run_url}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Nightly 1")


def test_run_result_and_compare_pages_fit_a_390px_screen(browser, site, project, user):
    from .conftest import PASSWORD

    dataset, baseline, others = six_runs(project)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Datasets", level=1)).to_be_visible()
    result = baseline.results.order_by("item_id").first()
    assert result is not None
    compare = reverse("run-compare", args=[dataset.id]) + "?" + "&".join(f"runs={r.id}" for r in [baseline, *others])
    pages = {
        "run page": baseline.get_absolute_url() + "?cols=input.question,output",
        "result page": reverse("result-detail", args=[dataset.id, baseline.id, result.id]),
        "compare page": compare,
        "runs tab": dataset.get_absolute_url() + "?tab=runs",
    }
    widths = {}
    for name, path in pages.items():
        page.goto(f"{site}{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        widths[name] = page.evaluate("document.documentElement.scrollWidth")
    context.close()
    assert all(width <= PHONE["width"] for width in widths.values()), widths
