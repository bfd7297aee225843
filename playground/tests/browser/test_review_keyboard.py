"""The review queue in Chromium with the keyboard only (no clicks after logging in):
digits and `=` score, `l` picks a label, `c` / Escape go in and out of the comment,
Enter saves and brings the next result, `j` / `k` move, a form that does not
validate comes back with its error, and "not yet reviewed" skips what was
reviewed. What was saved is read back from the database."""

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from datasets_app import services
from datasets_app.models import Annotation
from datasets_app.tests.factories import add_result, end_run, make_run

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error(`CSP: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'} at ${event.sourceFile}`);
});
"""
# The 400 of the form that does not validate is expected; nothing else may fail.
EXPECTED_400 = "Failed to load resource: the server responded with a status of 400 (Bad Request)"


@pytest.fixture(autouse=True)
def _runs_written_here_keep_their_chunks(settings):
    """The factories hold the run's chunks while writing results: keep a browser
    worker process (if another test started one) from taking them over."""
    settings.PLAYGROUND_LEASE_SECONDS = 600


@pytest.fixture
def reviewed_run(project):
    dataset = services.dataset_create(project=project, name="Review me")
    services.items_bulk_create(
        dataset=dataset,
        items=[{"input": {"question": f"question {n}"}, "expected_output": f"answer {n}"} for n in range(1, 6)],
    )
    run = make_run(dataset, name="Nightly")
    results = [
        add_result(run, item, output=f"output {item.position}", score=0.2 * item.position)
        for item in dataset.items.order_by("position")
    ]
    end_run(run)
    return run, results


def panel_heading(page: Page):
    return page.locator("#review-heading")


def expect_item(page: Page, label: str) -> None:
    expect(panel_heading(page)).to_contain_text(f"Item {label}")


def expect_progress(page: Page, text: str) -> None:
    expect(page.locator("#review-progress")).to_have_text(text)


def expect_focus_on_panel(page: Page) -> None:
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'review-panel'")


def annotation_of(result, user) -> Annotation:
    return Annotation.objects.get(result=result, author=user, name="human")


def test_reviewing_with_the_keyboard_only(logged_in: Page, site, user, reviewed_run):
    page = logged_in
    run, results = reviewed_run
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    # Every CSP violation is reported too (the console names only some).
    page.add_init_script(REPORT_VIOLATIONS)
    review = f"{site}{reverse('run-review', args=[run.dataset_id, run.pk])}"
    page.goto(review)

    expect_item(page, "#1")
    expect_progress(page, "0 / 5 reviewed")
    expect(page.locator("#review-position")).to_have_text("Result 1 of 5 in this filter")
    expect(page.get_by_role("heading", name="Keyboard")).to_be_visible()
    expect_focus_on_panel(page)

    # #1: 8 → 0.8, l → the first label ("good"), Enter saves and brings #2.
    page.keyboard.press("8")
    expect(page.locator("#review-score-value")).to_have_text("0.8")
    expect(page.locator("#review-scored")).to_be_checked()
    page.keyboard.press("l")
    expect(page.locator("input[name='label'][value='good']")).to_be_checked()
    page.keyboard.press("Enter")
    expect_item(page, "#2")
    expect_progress(page, "1 / 5 reviewed")
    expect(page.locator(".review-saved")).to_contain_text("Saved item #1: 0.8, good.")
    expect_focus_on_panel(page)
    saved = annotation_of(results[0], user)
    assert (saved.score, saved.label) == (0.8, "good")
    assert f"result={results[1].pk}" in page.url

    # #2: = → 1.0, l l → "bad", c → the comment; keys typed there are text, not shortcuts.
    page.keyboard.press("=")
    expect(page.locator("#review-score-value")).to_have_text("1.0")
    page.keyboard.press("l")
    page.keyboard.press("l")
    expect(page.locator("input[name='label'][value='bad']")).to_be_checked()
    page.keyboard.press("c")
    expect(page.locator("#review-comment")).to_be_focused()
    page.keyboard.type("j k 3 l: too long")
    expect(page.locator("#review-comment")).to_have_value("j k 3 l: too long")
    expect(page.locator("#review-score-value")).to_have_text("1.0")
    expect_item(page, "#2")
    # Escape leaves the comment; Enter then saves (a new line it would have been inside).
    page.keyboard.press("Escape")
    expect_focus_on_panel(page)
    page.keyboard.press("Enter")
    expect_item(page, "#3")
    expect_progress(page, "2 / 5 reviewed")
    saved = annotation_of(results[1], user)
    assert (saved.score, saved.label, saved.comment) == (1.0, "bad", "j k 3 l: too long")

    # j skips #3, k comes back to it.
    page.keyboard.press("j")
    expect_item(page, "#4")
    expect_focus_on_panel(page)
    assert f"result={results[3].pk}" in page.url
    page.keyboard.press("k")
    expect_item(page, "#3")
    assert f"result={results[2].pk}" in page.url
    # Shift+0 is 1.0 too; then 3 → 0.3; - takes the score away again.
    page.keyboard.press("Shift+0")
    expect(page.locator("#review-score-value")).to_have_text("1.0")
    page.keyboard.press("3")
    expect(page.locator("#review-score-value")).to_have_text("0.3")
    page.keyboard.press("-")
    expect(page.locator("#review-score-value")).to_have_text("—")
    expect(page.locator("#review-scored")).not_to_be_checked()
    # Neither a score nor a label: the error beside the score, the same result, still typed-in values.
    page.keyboard.press("c")
    page.keyboard.type("keep me")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    expect(page.locator("#review-score-errors")).to_contain_text("Give a score, a label or both.")
    expect_item(page, "#3")
    expect(page.locator("#review-comment")).to_have_value("keep me")
    expect_focus_on_panel(page)
    screenshot(page, "review-error")
    assert not Annotation.objects.filter(result=results[2]).exists()
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect_item(page, "#4")
    expect_progress(page, "3 / 5 reviewed")
    saved = annotation_of(results[2], user)
    assert (saved.score, saved.label, saved.comment) == (0.3, None, "keep me")

    # "Not yet reviewed" (the default) starts again at #4: #1–#3 are skipped, k has nowhere to go.
    page.goto(review)
    expect_item(page, "#4")
    expect(page.locator("#review-position")).to_have_text("Result 1 of 2 in this filter")
    expect(page.locator("#review-prev")).to_have_count(0)
    page.keyboard.press("k")
    expect_item(page, "#4")
    screenshot(page, "review-queue")

    # Shift+L goes back through the labels (from "none" to the last, "unsure"); save #4 and #5.
    page.keyboard.press("Shift+L")
    expect(page.locator("input[name='label'][value='unsure']")).to_be_checked()
    page.keyboard.press("Enter")
    expect_item(page, "#5")
    expect_progress(page, "4 / 5 reviewed")
    page.keyboard.press("0")
    page.keyboard.press("Enter")
    expect(panel_heading(page)).to_have_text("All reviewed")
    expect_progress(page, "5 / 5 reviewed")
    expect_focus_on_panel(page)
    assert (annotation_of(results[3], user).label, annotation_of(results[4], user).score) == ("unsure", 0.0)

    # In "all results", k goes back through reviewed ones, each with its review filled in.
    page.goto(f"{review}?filter=all&result={results[2].pk}")
    expect_item(page, "#3")
    page.keyboard.press("k")
    expect_item(page, "#2")
    expect(page.locator("#review-score-value")).to_have_text("1.0")
    expect(page.locator("input[name='label'][value='bad']")).to_be_checked()
    expect(page.locator("#review-position")).to_have_text("Result 2 of 5 in this filter")
    assert Annotation.objects.filter(author=user).count() == 5
    assert [problem for problem in problems if problem != EXPECTED_400] == []
    assert problems.count(EXPECTED_400) == 1
