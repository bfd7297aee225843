"""The Content-Security-Policy in a real browser: every page of the product, the
admin and Swagger UI load and work with no violation, and the run page's htmx
polling still swaps in fresh results (htmx itself must run under the policy)."""

import time

import pytest
from playwright.sync_api import Page, expect

from datasets_app import services
from datasets_app.models import DatasetRun, DatasetRunResult

from .conftest import PASSWORD, wait_for_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Reports every violation of this document to the test, whatever the console says.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  window.reportCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || 'inline'} at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""
RECORD_SWAPS = """
() => {
  window.__swaps = [];
  document.body.addEventListener('htmx:afterSettle', () => {
    const section = document.querySelector('#run-results');
    window.__swaps.push(Number(section.querySelector('progress.run-progress').getAttribute('value')));
  });
}
"""
INJECT_INLINE_STYLE = (
    "() => { const s = document.createElement('style'); s.textContent = 'b {}'; document.head.append(s); }"
)


@pytest.fixture
def user(django_user_model):
    """A superuser, so the admin index opens too."""
    return django_user_model.objects.create_superuser(username="alice", email="", password=PASSWORD)


@pytest.fixture
def violations(logged_in: Page) -> list[str]:
    found: list[str] = []

    def report(violation: str) -> None:
        found.append(violation)

    logged_in.expose_function("reportCspViolation", report)
    logged_in.add_init_script(REPORT_VIOLATIONS)
    logged_in.on(
        "console",
        lambda message: found.append(f"console: {message.text}") if "Content Security Policy" in message.text else None,
    )
    return found


def wait_until_claimed(run: DatasetRun, worker, timeout: float = 60.0) -> None:
    """The worker process may still be starting (seconds on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while DatasetRun.objects.get(pk=run.pk).status == DatasetRun.Status.PENDING:
        worker.assert_alive()
        assert time.monotonic() < deadline, f"no worker claimed the run:\n{worker.output()}"
        time.sleep(0.1)


def visit(page: Page, url: str) -> str:
    """Open `url`; returns its Content-Security-Policy header."""
    response = page.goto(url)
    assert response is not None and response.ok, url
    return response.headers.get("content-security-policy", "")


def test_every_page_works_under_the_policy_without_a_violation(logged_in: Page, site, worker, make_dataset, violations):
    page = logged_in
    # Ten quick items and one of a minute, two at a time: whichever order the worker takes them
    # in, one slot works through the quick ones for about 10 s and the run stays running.
    items = [
        {
            "input": {"question": "What is the capital of France?"},
            "expectedOutput": "Paris",
            "context": {"delayMs": 1000},
        }
    ] * 10 + [{"input": {"question": "Which is the largest planet?"}, "context": {"delayMs": 60_000}}]
    dataset = make_dataset("CSP tour", items=items)

    policy = visit(page, f"{site}/")
    expect(page.get_by_role("heading", name="Datasets", level=1)).to_be_visible()
    assert "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:" in policy
    assert "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'" in policy
    assert "nonce-" not in policy  # our pages have no inline script to allow
    # The detector itself: an inline <style> added now is refused, and reported.
    page.evaluate(INJECT_INLINE_STYLE)
    page.wait_for_timeout(500)
    assert any(v.startswith("style-src") for v in violations), violations
    violations.clear()

    visit(page, f"{site}{dataset.get_absolute_url()}")
    expect(page.get_by_role("heading", name="CSP tour")).to_be_visible()
    # The select-all box works through static/js/app.js (an onclick="" would be blocked).
    page.get_by_label("Select all items on this page").check()
    boxes = page.locator("#items-table input[name=item_ids]")
    expect(boxes.first).to_be_checked()
    expect(boxes.last).to_be_checked()

    run = services.run_start(
        dataset=dataset, target_type="agent", target_id="keyword-agent", scorer_ids=["exact-match"], max_concurrency=2
    )
    try:
        wait_until_claimed(run, worker)
        visit(page, f"{site}{run.get_absolute_url()}")
        page.evaluate(RECORD_SWAPS)
        # Polls every 2 s swap the section in place, with more results each time.
        page.wait_for_function(
            "() => window.__swaps.length >= 2 && window.__swaps.at(-1) > window.__swaps[0]", timeout=30_000
        )
        run.refresh_from_db()
        assert run.status == DatasetRun.Status.RUNNING

        result = DatasetRunResult.objects.filter(run=run).exclude(trace_id=None).first()
        assert result is not None
        visit(page, f"{site}/traces/{result.trace_id}/")
        expect(page.locator(".waterfall .span-row").first).to_be_visible()
        expect(page.locator(".waterfall rect.span-bar").first).to_be_visible()
    finally:
        services.run_cancel(run=run)
        wait_for_run(run, worker)

    visit(page, f"{site}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    docs_policy = visit(page, f"{site}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("LLM evaluation playground API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert "'nonce-" in docs_policy  # Swagger UI's inline initialiser carries this response's nonce

    assert violations == []
