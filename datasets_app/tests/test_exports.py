"""CSV and JSON Lines exports: formula cells are neutralised in CSV (OWASP CSV
injection), negative numbers stay numbers, JSON Lines keeps every value as stored."""

import csv
import io
import json

import pytest

from datasets_app import annotations, exports, services
from datasets_app.models import DatasetItem
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db

FORMULAS = ["=1+1", '=HYPERLINK("http://x","y")', "+cmd", "@SUM(A1)", "\t=1", "\r=1", "-1+1", "-2+3+cmd|' /C calc'!A0"]


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def csv_rows(response) -> list[dict[str, str]]:
    # newline="" keeps the \r inside a quoted cell, as a spreadsheet reading the file would.
    return list(csv.DictReader(io.StringIO(body(response), newline="")))


def jsonl_rows(response) -> list[dict]:
    return [json.loads(line) for line in body(response).splitlines()]


@pytest.fixture
def formulas(make_dataset):
    """One item per formula: as its input, its expected output and in its context."""
    return make_dataset(
        name="Formulas",
        items=[{"input": text, "expectedOutput": text, "context": text} for text in FORMULAS],
    )


def test_item_export_neutralises_every_formula_cell(formulas):
    rows = csv_rows(exports.export_items(formulas, "csv"))
    assert sorted(row["input"] for row in rows) == sorted("'" + text for text in FORMULAS)
    for row in rows:
        assert row["expectedOutput"] == row["context"] == row["input"]
        assert row["input"][0] == "'" and row["input"][1:] in FORMULAS


def test_run_result_export_neutralises_every_formula_cell(formulas):
    run = make_run(formulas)
    for item in DatasetItem.objects.filter(dataset=formulas):
        add_result(run, item, output=item.input)
    end_run(run)
    rows = csv_rows(exports.export_run_results(run, "csv"))
    assert sorted(row["output"] for row in rows) == sorted("'" + text for text in FORMULAS)
    for row in rows:
        assert row["input"] == row["output"] == row["expectedOutput"]


def test_an_error_message_starting_a_formula_is_neutralised(make_dataset):
    dataset = make_dataset(name="Errors", items=[{"input": "fine"}])
    run = make_run(dataset)
    add_result(run, dataset.items.get(), error="=cmd|' /C calc'!A0")
    end_run(run)
    [row] = csv_rows(exports.export_run_results(run, "csv"))
    assert row["error"] == "'=cmd|' /C calc'!A0"
    assert row["output"] == ""


def test_numbers_stay_numbers_and_other_cells_are_untouched(make_dataset):
    dataset = make_dataset(
        name="Numbers",
        items=[
            {"input": -1.5, "expectedOutput": -1, "context": "-2e-05"},
            {"input": {"formula": "=1+1"}, "expectedOutput": ["=1"], "context": "a = b"},
            {"input": "+1", "expectedOutput": "-1\n", "context": "-"},
        ],
    )
    rows = {row["input"]: row for row in csv_rows(exports.export_items(dataset, "csv"))}
    assert rows["-1.5"]["expectedOutput"] == "-1" and rows["-1.5"]["context"] == "-2e-05"
    # JSON objects and lists start with a bracket: no spreadsheet formula.
    assert rows['{"formula": "=1+1"}']["expectedOutput"] == '["=1"]'
    assert rows['{"formula": "=1+1"}']["context"] == "a = b"
    # Not plain numbers as JSON writes them: neutralised.
    assert rows["'+1"]["expectedOutput"] == "'-1\n" and rows["'+1"]["context"] == "'-"


def test_jsonl_exports_are_unchanged(formulas):
    items = jsonl_rows(exports.export_items(formulas, "jsonl"))
    assert sorted(row["input"] for row in items) == sorted(FORMULAS)
    assert all(row["input"] == row["expectedOutput"] == row["context"] for row in items)

    run = make_run(formulas)
    for item in DatasetItem.objects.filter(dataset=formulas):
        add_result(run, item, output=item.input)
    end_run(run)
    results = jsonl_rows(exports.export_run_results(run, "jsonl"))
    assert sorted(row["output"] for row in results) == sorted(FORMULAS)
    assert all(row["input"] == row["output"] == row["expectedOutput"] for row in results)


# ---- curation: metadata, split, annotations ---------------------------------------------


def test_item_export_has_metadata_and_split_columns_and_a_split_filter(capitals):
    first = capitals.items.order_by("position").first()
    services.item_update(item=first, metadata={"source": {"runId": "r1"}}, split="test")
    rows = csv_rows(exports.export_items(capitals, "csv"))
    assert list(rows[0]) == exports.ITEM_COLUMNS
    row = next(r for r in rows if r["id"] == str(first.pk))
    assert json.loads(row["metadata"]) == {"source": {"runId": "r1"}} and row["split"] == "test"
    assert [r["id"] for r in csv_rows(exports.export_items(capitals, "csv", split="test"))] == [str(first.pk)]
    assert len(jsonl_rows(exports.export_items(capitals, "jsonl", split=exports.NO_SPLIT))) == 2
    # An old version exports the split the item had then.
    assert {r["split"] for r in jsonl_rows(exports.export_items(capitals, "jsonl", version=1))} == {None}


def test_result_export_carries_annotations_without_a_query_per_result(
    make_dataset, user, django_assert_max_num_queries
):
    dataset = make_dataset(name="Many", items=[{"input": n, "expectedOutput": n} for n in range(30)])
    run = make_run(dataset)
    for item in dataset.items.all():
        result = add_result(run, item, output=item.input)
        annotations.annotation_save(result=result, dataset=dataset, author=user, score=0.5, label="good")
    end_run(run)
    response = exports.export_run_results(run, "jsonl")
    with django_assert_max_num_queries(4):
        rows = jsonl_rows(response)
    assert len(rows) == 30
    assert all(
        r["annotations"] == [{"name": "human", "score": 0.5, "label": "good", "comment": "", "author": "alice"}]
        for r in rows
    )
    csv_cells = [r["annotations"] for r in csv_rows(exports.export_run_results(run, "csv"))]
    assert json.loads(csv_cells[0])[0]["author"] == "alice"
