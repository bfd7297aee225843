"""The items table with the keyboard only: Edit moves the focus to the form's
first field, Save and Cancel bring it back to the row's Edit link (never to <body>)."""

import pytest
from playwright.sync_api import Page, expect

from datasets_app import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What has the focus: its tag, id, name and text, enough to tell the fields and links apart.
ACTIVE = """() => {
  const el = document.activeElement;
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id,
    name: el.getAttribute('name') || '',
    text: el.textContent.trim().replace(/\\s+/g, ' '),
    row: el.closest('tr') ? el.closest('tr').id : '',
  };
}"""
MAX_TABS = 60


def active(page: Page) -> dict:
    return page.evaluate(ACTIVE)


def wait_for_focus(page: Page, predicate: str) -> dict:
    """Wait until `predicate` (JS over document.activeElement, `el`) holds; the focused element."""
    page.wait_for_function(f"() => {{ const el = document.activeElement; return !!el && ({predicate}); }}")
    return active(page)


def tab_to(page: Page, text: str, row: str = "") -> dict:
    """Press Tab until the focused element's text starts with `text` (inside the row with
    the id `row`, when given); fail after MAX_TABS presses."""
    focused: dict = {}
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        focused = active(page)
        if focused["text"].startswith(text) and (not row or focused["row"] == row):
            return focused
    raise AssertionError(f"{text!r} never got the focus with Tab; last: {focused}")


def test_edit_save_and_cancel_keep_the_focus_in_the_row(logged_in: Page, site, project):
    page = logged_in
    dataset = services.dataset_create(project=project, name="Keyboard")
    first, second = services.items_bulk_create(
        dataset=dataset, items=[{"input": "first question"}, {"input": "second question"}]
    )
    page.goto(f"{site}{dataset.get_absolute_url()}")
    row_id = f"item-{first.pk}"

    # Tab to item #1's Edit link and press Enter: the form's first field (the input) has the focus.
    tab_to(page, "Edit", row=row_id)
    page.keyboard.press("Enter")
    focused = wait_for_focus(page, "el.tagName === 'TEXTAREA'")
    assert focused["name"] == "input" and focused["row"] == row_id

    # Type a new input, Tab to Save, Enter: the row is back and its Edit link has the focus.
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type('"first question, edited"')
    tab_to(page, "Save")
    page.keyboard.press("Enter")
    expect(page.locator(f"#{row_id}")).to_contain_text("first question, edited")
    focused = wait_for_focus(page, "el.tagName === 'A' && el.closest('tr') && !el.closest('tr.editing')")
    assert focused["text"] == "Edit item #1" and focused["row"] == row_id
    first.refresh_from_db()
    assert first.input == "first question, edited"

    # Enter again opens the form; Tab to Cancel, Enter: the row, focus on its Edit link.
    page.keyboard.press("Enter")
    focused = wait_for_focus(page, "el.tagName === 'TEXTAREA'")
    assert focused["name"] == "input" and focused["row"] == row_id
    tab_to(page, "Cancel")
    page.keyboard.press("Enter")
    focused = wait_for_focus(page, "el.tagName === 'A' && el.closest('tr') && !el.closest('tr.editing')")
    assert focused["text"] == "Edit item #1" and focused["row"] == row_id
    expect(page.locator("tr.editing")).to_have_count(0)

    # Invalid JSON: the form stays, the focus on the field with the error.
    page.keyboard.press("Enter")
    wait_for_focus(page, "el.tagName === 'TEXTAREA'")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("{not json")
    tab_to(page, "Save")
    page.keyboard.press("Enter")
    expect(page.locator("tr.editing")).to_contain_text("Not valid JSON")
    focused = wait_for_focus(page, "el.tagName === 'TEXTAREA' && el.getAttribute('aria-invalid') === 'true'")
    assert focused["name"] == "input" and focused["row"] == row_id
    second.refresh_from_db()
    assert second.version == 1
