"""Runs in the browser, executed by a real worker process: the live run page,
the trace waterfall, and the comparison of a regressed run."""

import re
from urllib.parse import urlparse

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from datasets_app import services
from datasets_app.models import DatasetRun

from .conftest import screenshot, wait_for_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KNOWN = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is 2+2?", "4"),
    ("Which is the largest planet?", "Jupiter"),
    ("Who is the author of Hamlet?", "William Shakespeare"),
]
NO_POLL_WINDOW_MS = 5_000

RESULT_ROWS = "#run-results table.results-table tbody tr"
# Every htmx swap of the results section logs what it shows, so the test can
# tell the rows and counters grew in place (not through reloads).
RECORD_SWAPS = """
() => {
  window.__swaps = [];
  document.body.addEventListener('htmx:afterSettle', () => {
    const section = document.querySelector('#run-results');
    window.__swaps.push({
      rows: document.querySelectorAll('#run-results table.results-table tbody tr').length,
      done: Number(section.querySelector('progress.run-progress').getAttribute('value')),
      status: section.querySelector('.run-status .badge').textContent.trim(),
      live: document.querySelector('#run-live-status').textContent.trim(),
    });
  });
}
"""


def make_dataset(project, name: str, count: int, delay_ms: int):
    dataset = services.dataset_create(project=project, name=name)
    items: list[services.NewItem] = [
        {"input": {"question": question}, "expected_output": answer, "context": {"delayMs": delay_ms}}
        for question, answer in (KNOWN * (count // len(KNOWN) + 1))[:count]
    ]
    services.items_bulk_create(dataset=dataset, items=items)
    dataset.refresh_from_db()
    return dataset


def run_to_the_end(dataset, target: str, worker) -> DatasetRun:
    """Start a run of `target` ("type/id") scored by exact-match, and wait for the worker to finish it."""
    target_type, target_id = target.split("/")
    run = services.run_start(dataset=dataset, target_type=target_type, target_id=target_id, scorer_ids=["exact-match"])
    return wait_for_run(run, worker)


def test_run_started_from_the_runs_tab_fills_in_live_then_stops_polling(logged_in: Page, site, worker, project):
    page = logged_in
    # 12 items at concurrency 2, 700 ms each: about 4 s, so polls every 2 s see it half done.
    dataset = make_dataset(project, "Live run", 12, delay_ms=700)
    fragment_path = None
    fragment_requests = []

    page.goto(f"{site}{dataset.get_absolute_url()}")
    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page.get_by_role("heading", name="Start a run")).to_be_visible()
    expect(page.get_by_text("No runs yet.")).to_be_visible()
    page.get_by_label("Target:").select_option("agent:keyword-agent")
    page.get_by_label("Exact match", exact=True).check()
    page.get_by_label("Contains", exact=True).check()
    page.get_by_label("Concurrency:").fill("2")
    page.get_by_role("button", name="Start run").click()

    expect(page.get_by_role("status")).to_contain_text("Run started over 12 items.")
    run = DatasetRun.objects.get(dataset=dataset)
    assert urlparse(page.url).path == run.get_absolute_url()
    fragment_path = reverse("run-results-fragment", args=[dataset.id, run.id])
    page.on(
        "request",
        lambda request: fragment_requests.append(request.url) if urlparse(request.url).path == fragment_path else None,
    )
    page.evaluate("window.__marker = 'same page'")
    page.evaluate(RECORD_SWAPS)
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    results = page.locator(RESULT_ROWS)
    badge = page.locator("#run-results .run-status .badge")
    expect(page.locator(".run-meta")).to_contain_text("keyword-agent")
    expect(results.first).to_be_visible()
    screenshot(page, "run-detail-running")

    expect(badge).to_have_text("completed")
    expect(results).to_have_count(12)
    requests_when_completed = len(fragment_requests)
    expect(page.locator("#run-results .progress-wrap")).to_contain_text("12 / 12 done (100%)")
    expect(page.locator("#run-results .count-ok")).to_have_text("12")
    expect(page.locator("#run-results .count-failed")).to_have_text("0")
    expect(page.locator("#run-results")).not_to_have_attribute("hx-get", re.compile(".*"))
    # The live region (outside the swapped section) was kept up to date by each poll.
    expect(page.locator("#run-live-status")).to_have_text("Run completed: 12 of 12 done.")

    swaps = page.evaluate("window.__swaps")
    assert requests_when_completed >= 1
    assert swaps, "the results section was never swapped in place"
    rows_seen = [swap["rows"] for swap in swaps]
    done_seen = [swap["done"] for swap in swaps]
    assert rows_seen == sorted(rows_seen) and done_seen == sorted(done_seen), swaps
    assert any(0 < done < 12 for done in done_seen), f"never saw the run part-way: {swaps}"
    assert swaps[-1] == {"rows": 12, "done": 12, "status": "completed", "live": "Run completed: 12 of 12 done."}
    assert all(swap["live"].startswith(f"{swap['done']} of 12 done") for swap in swaps[:-1]), swaps

    # Finished: the section no longer polls.
    page.wait_for_timeout(NO_POLL_WINDOW_MS)
    assert len(fragment_requests) == requests_when_completed, fragment_requests[requests_when_completed:]
    assert page.evaluate("window.__marker") == "same page"
    assert navigations == []

    run.refresh_from_db()
    assert (run.status, run.done_count, run.succeeded_count) == ("completed", 12, 12)
    assert run.results.count() == 12


def test_trace_link_from_the_results_table_shows_the_span_waterfall(logged_in: Page, site, worker, project):
    page = logged_in
    dataset = make_dataset(project, "Traced", 2, delay_ms=0)
    run = run_to_the_end(dataset, "agent/keyword-agent", worker)
    assert run.status == "completed"

    page.goto(f"{site}{run.get_absolute_url()}")
    expect(page.locator(RESULT_ROWS)).to_have_count(2)
    first = page.locator(RESULT_ROWS).first
    first.get_by_role("link", name="Trace").click()

    expect(page).to_have_url(re.compile(r"/traces/[0-9a-f]+/$"))
    waterfall = page.get_by_role("list", name="Spans, nested by parent")
    spans = waterfall.locator(".span-row")
    expect(spans.first).to_be_visible()
    names = waterfall.locator(".span-name")
    expect(names.first).to_have_text(re.compile(r"^run item"))
    expect(names).to_contain_text(["run item", "target", "scorer exact-match"])
    expect(waterfall.locator(".span-row.span-error")).to_have_count(0)
    root = spans.first
    expect(root).to_have_attribute("data-depth", "0")
    target_span = waterfall.locator(".span-row", has=page.locator(".span-name", has_text=re.compile(r"^target$")))
    expect(target_span).to_have_attribute("data-depth", "1")
    span_count = spans.count()
    expect(page.locator(".run-meta div", has_text="Spans").locator("dd")).to_have_text(str(span_count))
    expect(page.get_by_role("link", name="Back to the run")).to_have_attribute("href", run.get_absolute_url())
    screenshot(page, "trace")


def test_compare_page_highlights_the_regressed_run(logged_in: Page, site, worker, project):
    page = logged_in
    dataset = make_dataset(project, "Regression", 4, delay_ms=0)
    good = run_to_the_end(dataset, "agent/keyword-agent", worker)
    bad = run_to_the_end(dataset, "workflow/uppercase", worker)
    assert (good.status, bad.status) == ("completed", "completed")

    page.goto(f"{site}{reverse('run-compare', args=[dataset.id])}")
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    # Only the selects that can be used now: the optional ones appear one by one.
    expect(page.locator("#compare-run-2")).to_be_hidden()
    page.get_by_label("Baseline").select_option(str(good.id))
    page.get_by_label("Compared run", exact=True).select_option(str(bad.id))
    expect(page.locator("#compare-run-2")).to_be_visible()
    expect(page.locator("#compare-run-3")).to_be_hidden()
    page.get_by_role("button", name="Compare").click()

    comparison = page.locator("section.comparison")
    expect(comparison).to_have_count(1)
    expect(comparison.locator("h2 .badge-failed")).to_have_text("regression")
    expect(comparison.locator(".shared-note")).to_have_text("Compared on 4 items both runs have.")
    scorer_cell = comparison.locator("table.compare-summary td.scorer-cell")
    expect(scorer_cell).to_have_count(1)
    expect(scorer_cell).to_have_class(re.compile(r"\bregressed\b"))
    expect(scorer_cell.locator(".delta")).to_have_text("−1.000")
    expect(scorer_cell.locator(".verdict-regressed")).to_have_text("Regressed")
    item_rows = comparison.locator("table.compare-items tbody tr")
    expect(item_rows).to_have_count(4)
    expect(comparison.locator("table.compare-items tbody tr.regressed")).to_have_count(4)
    expect(item_rows.first.locator("li.regressed")).to_contain_text("1.00 → 0.00")
    expect(comparison.locator("table.compare-items")).to_contain_text("WHAT IS THE CAPITAL OF FRANCE?")
    # Each cell opens its result.
    item_rows.first.get_by_role("link", name=re.compile(r"^Result of item #1 in ")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Item #1")
