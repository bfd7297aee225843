"""Datasets in the browser: create one, import a CSV through the mapping step,
and see a malformed file refused as a whole."""

import re

import pytest
from playwright.sync_api import FilePayload, Page, expect

from datasets_app import services
from datasets_app.models import Dataset

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTIONS_CSV = (
    "question,answer,notes\n"
    "What is the capital of France?,Paris,checked by hand\n"
    '"{""question"": ""What is 2+2?"", ""meta"": {""level"": 1, ""tags"": [""math"", ""easy""]}}",4,'
    '"{""reviewer"": {""name"": ""bob""}}"\n'
    "Who is the author of Hamlet?,William Shakespeare,internal note never imported\n"
)


def items_table(page: Page):
    return page.locator("#items-table table.items tbody tr")


def test_create_dataset_then_import_csv_through_the_mapping_step(logged_in: Page):
    page = logged_in
    expect(page.get_by_text("No datasets yet.")).to_be_visible()

    page.get_by_label("Name:", exact=True).fill("Trivia")
    page.get_by_label("Description:", exact=True).fill("General knowledge questions")
    page.get_by_role("button", name="Create dataset").click()

    expect(page.get_by_role("heading", name="Trivia", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Created dataset “Trivia”")
    expect(page.get_by_text("This dataset has no items yet.")).to_be_visible()
    meta = page.locator(".page-head .meta")
    version_shown = re.search(r"version (\d+)", meta.inner_text())
    assert version_shown
    version_before = int(version_shown.group(1))

    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import items")).to_be_visible()
    page.get_by_label("File:", exact=True).set_input_files(
        files=[FilePayload(name="questions.csv", mimeType="text/csv", buffer=QUESTIONS_CSV.encode())]
    )
    page.get_by_role("button", name="Upload and preview").click()

    # The mapping step: one select per column, the first rows as they are in the file.
    expect(page.get_by_role("heading", name="What does each column hold?")).to_be_visible()
    expect(page.get_by_text("3 rows found")).to_be_visible()
    mapping = page.locator("table.mapping")
    expect(mapping.locator("tbody tr")).to_have_count(3)
    expect(mapping).to_contain_text('"tags": ["math", "easy"]')
    page.get_by_label("question", exact=True).select_option("input")
    page.get_by_label("answer", exact=True).select_option("expectedOutput")
    page.get_by_label("notes", exact=True).select_option("ignore")
    screenshot(page, "import-mapping")
    page.get_by_role("button", name="Check the rows").click()

    # The preview: the items as they will be stored, nested JSON parsed, notes left out.
    expect(page.get_by_role("heading", name="3 items ready to import")).to_be_visible()
    preview = page.locator("table.items")
    expect(preview.locator("tbody tr")).to_have_count(3)
    expect(preview).to_contain_text('"What is the capital of France?"')
    expect(preview).to_contain_text('"level": 1')
    expect(preview).not_to_contain_text("checked by hand")
    expect(preview).not_to_contain_text("reviewer")
    page.get_by_role("button", name="Import 3 items").click()

    expect(page.get_by_role("heading", name="Trivia", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(
        f"Imported 3 items from questions.csv (dataset version {version_before + 1})"
    )
    rows = items_table(page)
    expect(rows).to_have_count(3)
    expect(page.locator("#items-table")).to_contain_text('"William Shakespeare"')
    expect(page.locator("#items-table")).to_contain_text('"tags": [')
    expect(page.locator("#items-table")).not_to_contain_text("internal note")
    expect(meta).to_contain_text(f"version {version_before + 1}")
    expect(page.get_by_role("link", name=re.compile(r"^Items\s+3$"))).to_be_visible()
    screenshot(page, "dataset-detail-items")

    dataset = Dataset.objects.get(name="Trivia")
    assert dataset.version == version_before + 1
    assert dataset.items.live().count() == 3
    assert {"question": "What is 2+2?", "meta": {"level": 1, "tags": ["math", "easy"]}} in [
        item.input for item in dataset.items.live()
    ]

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    row = page.locator("table.table tbody tr", has=page.get_by_role("link", name="Trivia"))
    expect(row.locator("td.num").nth(0)).to_have_text("3")
    expect(row.locator("td.num").nth(1)).to_have_text(f"v{version_before + 1}")
    screenshot(page, "datasets-list")


def test_malformed_imports_list_their_rows_and_write_nothing(logged_in: Page, site, project):
    page = logged_in
    dataset = services.dataset_create(project=project, name="Kept as is")
    services.items_bulk_create(
        dataset=dataset,
        items=[{"input": "first", "expected_output": "1"}, {"input": "second", "expected_output": "2"}],
    )
    dataset.refresh_from_db()
    version = dataset.version

    def upload(name: str, text: str):
        page.goto(f"{site}{dataset.get_absolute_url()}import/")
        page.get_by_label("File:", exact=True).set_input_files(
            files=[FilePayload(name=name, mimeType="text/plain", buffer=text.encode())]
        )
        page.get_by_role("button", name="Upload and preview").click()

    # A CSV whose JSON-looking cells do not parse: the mapping step, then the errors by row.
    upload(
        "broken.csv",
        'question,answer\nfine question,fine answer\n"{""question"": ""unclosed""",x\n"[1, 2",y\n',
    )
    expect(page.get_by_role("heading", name="What does each column hold?")).to_be_visible()
    page.get_by_role("button", name="Check the rows").click()
    alert = page.locator(".error-card")
    expect(alert).to_contain_text("Nothing was imported: Some rows cannot be imported.")
    errors = alert.locator(".error-list li")
    expect(errors).to_have_count(2)
    expect(errors.nth(0)).to_contain_text("row 3: column question is not valid JSON")
    expect(errors.nth(1)).to_contain_text("row 4: column question is not valid JSON")
    expect(page.get_by_role("button", name=re.compile(r"^Import \d+"))).to_have_count(0)

    # A JSONL file with a broken line: refused straight away, the line number given.
    upload(
        "broken.jsonl",
        '{"input": "ok", "expectedOutput": "fine"}\n{"input": "no closing brace"\n{"input": "ok too"}\n',
    )
    alert = page.locator(".error-card")
    expect(alert).to_contain_text("Nothing was imported")
    expect(alert.locator(".error-list li")).to_have_count(1)
    expect(alert.locator(".error-list li")).to_contain_text("row 2: not valid JSON")
    expect(page.get_by_role("button", name=re.compile(r"^Import \d+"))).to_have_count(0)

    dataset.refresh_from_db()
    assert dataset.items.live().count() == 2
    assert dataset.version == version
    page.goto(f"{site}{dataset.get_absolute_url()}")
    expect(items_table(page)).to_have_count(2)


def test_fifty_rows_into_an_object_input_schema_with_the_guessed_mapping(logged_in: Page, site, project):
    """A "question" column fills the `question` key the dataset's input schema asks for,
    without the user touching the mapping."""
    page = logged_in
    dataset = services.dataset_create(
        project=project,
        name="Questions",
        input_schema={"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]},
    )
    csv_text = "question,answer\n" + "".join(f"Question {n}?,{'' if n % 10 == 0 else n}\n" for n in range(1, 51))

    page.goto(f"{site}{dataset.get_absolute_url()}")
    page.get_by_role("link", name="Import", exact=True).click()
    page.get_by_label("File:", exact=True).set_input_files(
        files=[FilePayload(name="questions.csv", mimeType="text/csv", buffer=csv_text.encode())]
    )
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.get_by_text("50 rows found")).to_be_visible()
    expect(page.get_by_label("question", exact=True)).to_have_value("input.question")
    expect(page.get_by_label("answer", exact=True)).to_have_value("expectedOutput")
    page.get_by_role("button", name="Check the rows").click()

    expect(page.get_by_role("heading", name="50 items ready to import")).to_be_visible()
    expect(page.locator("table.items")).to_contain_text('"question": "Question 1?"')
    page.get_by_role("button", name="Import 50 items").click()
    expect(page.get_by_role("status")).to_contain_text("Imported 50 items from questions.csv")

    items = list(dataset.items.live())
    assert len(items) == 50
    assert all(set(item.input) == {"question"} for item in items)
    empty = [item for item in items if item.input["question"] == "Question 10?"]
    assert empty[0].expected_output is None, "an empty cell is no expected output, not null shown as None"
