"""The import pages: upload, CSV column mapping, preview, errors, import as one version."""

import html as html_lib
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets_app import exports, importers

pytestmark = pytest.mark.django_db


def upload(client, dataset, name, content, fmt=""):
    body = content.encode() if isinstance(content, str) else content
    return client.post(
        reverse("dataset-import", args=[dataset.id]), {"file": SimpleUploadedFile(name, body), "format": fmt}
    )


def review_url(dataset):
    return reverse("dataset-import-review", args=[dataset.id])


CSV = (
    "question,topic,answer,notes\n"
    'Capital of France?,geo,Paris,"{""source"": ""atlas""}"\n'
    '"Sum of [1,2]?","{""kind"": ""math"", ""level"": 2}",3,\n'
)
MAPPING = {"col_0": "input", "col_1": "input", "col_2": "expectedOutput", "col_3": "context"}


def test_csv_import_maps_columns_previews_then_writes_one_version(browser_client, make_dataset):
    dataset = make_dataset(name="Quiz")
    response = upload(browser_client, dataset, "quiz.csv", CSV)
    assert response["Location"] == review_url(dataset)

    mapping_page = browser_client.get(review_url(dataset)).content.decode()
    assert "2 rows found" in mapping_page
    assert '<label for="id_col_0">question</label>' in mapping_page
    assert '<option value="context">Context</option>' in mapping_page
    assert "Capital of France?" in mapping_page  # the first rows are previewed

    preview = browser_client.post(review_url(dataset), {"step": "preview", **MAPPING}).content.decode()
    assert "2 items ready to import" in preview
    assert "&quot;kind&quot;: &quot;math&quot;" in preview
    dataset.refresh_from_db()
    assert dataset.version == 0, "nothing is written before the confirmation"

    response = browser_client.post(review_url(dataset), {"step": "import", **MAPPING}, follow=True)
    assert "Imported 2 items from quiz.csv (dataset version 1)" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.version == 1 and dataset.item_count == 2
    items = {item.expected_output: item for item in dataset.items.all()}
    assert items[3].input == {"question": "Sum of [1,2]?", "topic": {"kind": "math", "level": 2}}
    assert items[3].context is None
    assert items["Paris"].input == {"question": "Capital of France?", "topic": "geo"}
    assert items["Paris"].context == {"source": "atlas"}
    # The uploaded file is forgotten once imported.
    assert browser_client.get(review_url(dataset))["Location"] == reverse("dataset-import", args=[dataset.id])


def test_csv_with_one_invalid_row_lists_it_and_writes_nothing(browser_client, make_dataset):
    dataset = make_dataset(name="Typed", output_schema={"type": "string"})
    upload(browser_client, dataset, "rows.csv", "input,expected\nq1,fine\nq2,42\nq3,{broken\n")
    response = browser_client.post(
        review_url(dataset), {"step": "preview", "col_0": "input", "col_1": "expectedOutput"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was imported" in html
    assert "row 4: column expected is not valid JSON" in html
    response = browser_client.post(review_url(dataset), {"step": "import", "col_0": "input", "col_1": "expectedOutput"})
    assert "Nothing was imported" in response.content.decode()
    assert not dataset.items.exists()


def test_schema_violation_lists_the_row(browser_client, make_dataset):
    dataset = make_dataset(name="Typed", output_schema={"type": "string"})
    upload(
        browser_client,
        dataset,
        "rows.jsonl",
        '{"input": "a", "expectedOutput": "ok"}\n{"input": "b", "expectedOutput": 42}\n',
    )
    html = browser_client.get(review_url(dataset)).content.decode()
    assert "row 2: expectedOutput: 42 is not of type &#x27;string&#x27;" in html
    assert not dataset.items.exists()


def test_csv_without_input_column_is_asked_again(browser_client, make_dataset):
    dataset = make_dataset(name="Quiz")
    upload(browser_client, dataset, "quiz.csv", CSV)
    html = browser_client.post(
        review_url(dataset),
        {"step": "preview", "col_0": "ignore", "col_1": "ignore", "col_2": "ignore", "col_3": "ignore"},
    ).content.decode()
    assert "Map at least one column to the input." in html
    assert not dataset.items.exists()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.csv", "a,b\n1,2,3\n", "row 2: has 3 cells but the header has 2 columns"),
        ("bad.json", '[{"input": 1}, {"input": 2,}]', "line 1: "),
        ("bad.json", '{"rows": []}', "Expected a list of items or {&quot;items&quot;: [...]}."),
        ("bad.jsonl", '{"input": 1}\n{"input"\n', "row 2: not valid JSON"),
    ],
)
def test_malformed_files_are_refused_with_reasons(browser_client, capitals, name, content, expected):
    upload(browser_client, capitals, name, content)
    response = browser_client.get(review_url(capitals))
    html = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was imported" in html and expected in html
    capitals.refresh_from_db()
    assert capitals.version == 1 and capitals.item_count == 3


def test_json_import_previews_then_imports(browser_client, capitals):
    upload(
        browser_client,
        capitals,
        "more.json",
        '{"items": [{"input": {"q": "<script>x</script>"}, "expectedOutput": "y"}]}',
    )
    preview = browser_client.get(review_url(capitals)).content.decode()
    assert "1 item ready to import" in preview and "&lt;script&gt;x&lt;/script&gt;" in preview
    browser_client.post(review_url(capitals), {"step": "import"})
    capitals.refresh_from_db()
    assert capitals.item_count == 4 and capitals.version == 2


def test_format_is_taken_from_the_select_when_the_name_says_nothing(browser_client, capitals):
    response = upload(browser_client, capitals, "data.txt", '{"input": 1}\n')
    assert "Cannot tell the format from the file name" in response.content.decode()
    response = upload(browser_client, capitals, "data.txt", '{"input": 1}\n', fmt="jsonl")
    assert response["Location"] == review_url(capitals)


def test_files_over_the_limit_are_refused(browser_client, capitals, monkeypatch):
    monkeypatch.setattr(importers, "MAX_IMPORT_BYTES", 1024 * 1024)
    response = upload(browser_client, capitals, "big.jsonl", b'{"input": 1}\n' * 100_000)
    html = response.content.decode()
    assert response.status_code == 400
    assert "imports are limited to 1 MB" in html and 'id="id_file_error"' in html


def test_exported_csv_imports_back_unchanged(browser_client, capitals, make_dataset):
    exported = b"".join(browser_client.get(reverse("dataset-export", args=[capitals.id, "csv"])).streaming_content)
    target = make_dataset(name="Copy")
    upload(browser_client, target, "capitals.csv", exported)
    mapping_page = browser_client.get(review_url(target)).content.decode()
    assert '<option value="ignore" selected>Ignore</option>' in mapping_page
    form = {f"col_{i}": m for i, m in enumerate(importers.guess_mappings(exports.ITEM_COLUMNS))}
    browser_client.post(review_url(target), {"step": "import", **form})
    assert sorted(i.input["question"] for i in target.items.all()) == sorted(
        i.input["question"] for i in capitals.items.all()
    )
    assert {i.expected_output for i in target.items.all()} == {"Paris", "Tokyo", "Lima"}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "nan.json",
            '[{"input": {"x": NaN}}, {"input": 1e999}]',
            [
                "row 1: input is not valid JSON: NaN",
                "row 2: input is not valid JSON: Infinity",
            ],
        ),
        ("nan.jsonl", '{"input": 1}\n{"input": Infinity}\n', ["row 2 is not valid JSON: Infinity"]),
        ("surrogate.jsonl", '{"input": "\\ud800"}\n', ["row 1 is not valid JSON: lone surrogate \\ud800"]),
        (
            "surrogate.json",
            '[{"input": "fine"}, {"input": "\\udfff"}]',
            [
                "row 2: input is not valid JSON: lone surrogate \\udfff",
            ],
        ),
        ("deep.json", "[" * 10_000 + "]" * 10_000, ["The file is nested deeper than 64 levels"]),
        ("deep.jsonl", '{"input": ' + "[" * 10_000 + "]" * 10_000 + "}\n", ["row 1 is nested deeper than 64 levels"]),
    ],
)
def test_json_that_cannot_be_stored_refuses_the_whole_file(browser_client, api, capitals, name, content, expected):
    upload(browser_client, capitals, name, content)
    for _ in range(2):  # every load of the review page says why; none is a 500
        response = browser_client.get(review_url(capitals))
        html = response.content.decode()
        assert response.status_code == 400
        assert "Nothing was imported" in html
        assert all(message in html for message in expected)
    assert browser_client.post(review_url(capitals), {"step": "import"}).status_code == 400
    capitals.refresh_from_db()
    assert capitals.version == 1 and capitals.item_count == 3
    assert api.get(f"/api/datasets/{capitals.id}/items").status_code == 200


QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "topic": {"type": "string"}},
    "required": ["question"],
}


def selected_mapping(html):
    """The mapping the page proposes: each column select's selected option, as the browser would post it."""
    mapping = {}
    for name, body in re.findall(r'<select name="(col_\d+)"[^>]*>(.*?)</select>', html, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', body)
        assert selected, f"{name} has no option selected"
        mapping[name] = html_lib.unescape(selected.group(1))
    return mapping


def test_fifty_rows_fill_an_object_input_with_the_guessed_mapping(browser_client, make_dataset):
    dataset = make_dataset(name="Questions", input_schema=QUESTION_SCHEMA, output_schema={"type": "string"})
    rows = [f"Question {n}?,{'geo' if n % 2 else ''},{'' if n % 5 == 0 else f'answer {n}'}" for n in range(1, 51)]
    upload(browser_client, dataset, "questions.csv", "question,topic,answer\n" + "\n".join(rows) + "\n")

    page = browser_client.get(review_url(dataset)).content.decode()
    assert "50 rows found" in page
    # Every field and every key the schemas name is offered; the guess follows the schema.
    assert '<option value="input.question" selected>Input › question</option>' in page
    assert '<option value="input.topic">Input › topic</option>' in page
    mapping = selected_mapping(page)
    assert mapping == {"col_0": "input.question", "col_1": "input.topic", "col_2": "expectedOutput"}

    preview = browser_client.post(review_url(dataset), {"step": "preview", **mapping}).content.decode()
    assert "50 items ready to import" in preview, preview
    response = browser_client.post(review_url(dataset), {"step": "import", **mapping}, follow=True)
    assert "Imported 50 items from questions.csv" in response.content.decode()

    items = {item.input["question"]: item for item in dataset.items.all()}
    assert len(items) == 50
    assert items["Question 1?"].input == {"question": "Question 1?", "topic": "geo"}
    assert items["Question 2?"].input == {"question": "Question 2?"}, "an empty cell is no key, never null"
    assert items["Question 1?"].expected_output == "answer 1"
    assert items["Question 5?"].expected_output is None, "an empty whole-field cell is no expected output"


def test_a_bare_input_for_an_object_schema_is_refused_with_a_hint(browser_client, make_dataset):
    dataset = make_dataset(name="Questions", input_schema=QUESTION_SCHEMA)
    upload(browser_client, dataset, "questions.csv", "question\nWhat?\n")
    response = browser_client.post(review_url(dataset), {"step": "preview", "col_0": "input"})
    html = html_lib.unescape(response.content.decode())
    assert response.status_code == 400
    assert "The input schema expects an object: map the columns to input.question, input.topic." in html
    assert not dataset.items.exists()


def test_mapping_errors_are_shown_on_the_mapping_step(browser_client, make_dataset):
    dataset = make_dataset(name="Quiz")
    upload(browser_client, dataset, "quiz.csv", "q,lang,answer\nWhat?,en,That\n")
    page = browser_client.get(review_url(dataset)).content.decode()
    assert '<option value="input.q">Input › q</option>' in page
    assert '<option value="context.lang">Context › lang</option>' in page

    response = browser_client.post(
        review_url(dataset), {"step": "preview", "col_0": "input", "col_1": "input.lang", "col_2": "expectedOutput"}
    )
    html = html_lib.unescape(response.content.decode())
    assert response.status_code == 400
    assert "column q is the whole input, so column lang cannot fill input.lang; map q to input.<key> too" in html
    assert "What does each column hold?" in html

    response = browser_client.post(
        review_url(dataset),
        {"step": "preview", "col_0": "input.q", "col_1": "input.lang", "col_2": "expectedOutput"},
    )
    assert "1 item ready to import" in response.content.decode()
    response = browser_client.post(
        review_url(dataset), {"step": "preview", "col_0": "input.x", "col_1": "ignore", "col_2": "ignore"}
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
