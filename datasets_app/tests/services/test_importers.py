"""Parsing and validating import files: nothing is written until the whole file is valid."""

import pytest

from datasets_app import importers
from datasets_app.importers import ImportFileError

pytestmark = pytest.mark.django_db


def rows(items):
    return [entry for _, entry in items]


def test_csv_cells_holding_json_are_parsed_and_other_cells_stay_text():
    text = 'question,meta,answer\nCapital of France?,"{""lang"": ""en"", ""tags"": [1, 2]}",Paris\n"2+2",[1],4\n'
    items = importers.csv_items(text, {"question": "input", "meta": "context", "answer": "expectedOutput"})
    assert rows(items) == [
        {"input": "Capital of France?", "expectedOutput": "Paris", "context": {"lang": "en", "tags": [1, 2]}},
        {"input": "2+2", "expectedOutput": 4, "context": [1]},
    ]


def test_csv_columns_mapped_to_the_same_field_become_an_object():
    text = "city,country,answer,notes\nParis,France,yes,ignored\n"
    items = importers.csv_items(
        text, {"city": "input", "country": "input", "answer": "expectedOutput", "notes": "ignore"}
    )
    assert rows(items) == [{"input": {"city": "Paris", "country": "France"}, "expectedOutput": "yes"}]


def test_csv_rows_are_numbered_as_in_the_file():
    text = "input,answer\nok,1\n,2\nbad,{oops\n"
    with pytest.raises(ImportFileError) as caught:
        importers.csv_items(text, {"input": "input", "answer": "expectedOutput"})
    assert caught.value.errors == [
        "row 3: the input is empty",
        "row 4: column answer is not valid JSON (Expecting property name enclosed in double quotes)",
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a,b\n1,2,3\n", "row 2: has 3 cells but the header has 2 columns"),
        ('a,b\n"unclosed,2\n', "row 2: unexpected end of data"),
        ("a,a\n1,2\n", "row 1: duplicate column names a"),
        ("a,b\n", "the file has a header but no rows"),
    ],
)
def test_malformed_csv_is_refused(text, error):
    with pytest.raises(ImportFileError) as caught:
        importers.read_csv(text)
    assert error in caught.value.errors


def test_json_accepts_a_list_or_an_items_object():
    listed = importers.json_items('[{"input": {"q": 1}, "expectedOutput": "a", "context": ["c"]}]')
    wrapped = importers.json_items('{"items": [{"input": "x"}]}')
    assert rows(listed) == [{"input": {"q": 1}, "expectedOutput": "a", "context": ["c"]}]
    assert rows(wrapped) == [{"input": "x"}]


def test_json_lists_every_bad_entry():
    with pytest.raises(ImportFileError) as caught:
        importers.json_items('[{"input": 1}, {"expectedOutput": 2}, 3, {"input": 1, "expected_output": 2}]')
    assert caught.value.errors == [
        "row 2: the input is missing",
        "row 3: expected an object with an input, got int",
        "row 4: unknown field expected_output (expected input, expectedOutput, context)",
    ]


def test_invalid_json_names_the_line():
    with pytest.raises(ImportFileError) as caught:
        importers.json_items('[\n{"input": 1},\n{"input": }\n]')
    assert caught.value.errors == ["line 3: Expecting value"]


def test_jsonl_reports_the_line_of_each_bad_row_and_skips_blank_lines():
    assert rows(importers.jsonl_items('{"input": 1}\n\n{"input": 2, "id": "x"}\n')) == [{"input": 1}, {"input": 2}]
    with pytest.raises(ImportFileError) as caught:
        importers.jsonl_items('{"input": 1}\n{"input": \n[1]\n')
    assert caught.value.errors == [
        "row 2: not valid JSON (Expecting value)",
        "row 3: expected an object with an input, got list",
    ]


def test_schema_errors_name_the_row(make_dataset):
    dataset = make_dataset(input_schema={"type": "object", "required": ["q"]})
    with pytest.raises(ImportFileError) as caught:
        importers.prepare_import(dataset=dataset, text='{"input": {"q": 1}}\n{"input": {"x": 1}}\n', fmt="jsonl")
    assert caught.value.errors == ["row 2: input: 'q' is a required property"]


def test_import_writes_one_version(make_dataset):
    dataset = make_dataset(name="Empty")
    created = importers.import_items(dataset=dataset, text='[{"input": 1}, {"input": 2}]', fmt="json")
    dataset.refresh_from_db()
    assert len(created) == 2 and dataset.version == 1 and dataset.item_count == 2


def test_failed_import_writes_nothing(make_dataset):
    dataset = make_dataset(name="Empty")
    with pytest.raises(ImportFileError):
        importers.import_items(dataset=dataset, text='{"input": 1}\nnot json\n', fmt="jsonl")
    dataset.refresh_from_db()
    assert dataset.version == 0 and not dataset.items.exists()


def test_decode_refuses_big_binary_and_empty_files():
    with pytest.raises(ImportFileError, match="limited to 5 MB"):
        importers.decode_upload(b"x" * (importers.MAX_IMPORT_BYTES + 1))
    with pytest.raises(ImportFileError, match="not UTF-8"):
        importers.decode_upload(b"\xff\xfe\x00bad")
    with pytest.raises(ImportFileError, match="empty"):
        importers.decode_upload(b"  \n")
    assert importers.decode_upload("\ufeffa,b\n".encode()) == "a,b\n"


def test_column_guesses():
    exported = ["id", "input", "expectedOutput", "context", "version", "createdAt"]
    assert importers.guess_mappings(exported) == ["ignore", "input", "expectedOutput", "context", "ignore", "ignore"]
    assert importers.guess_mappings(["Question", "Expected answer"]) == ["input", "ignore"]
    assert importers.guess_mappings(["city", "answer"]) == ["input", "expectedOutput"]


DEEP = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize(
    ("fmt", "text", "errors"),
    [
        (
            "jsonl",
            '{"input": 1}\n{"input": NaN}\n{"input": [-Infinity]}\n',
            [
                "row 2 is not valid JSON: NaN",
                "row 3 is not valid JSON: -Infinity",
            ],
        ),
        ("jsonl", '{"input": "ok"}\n{"input": "\\ud800"}\n', ["row 2 is not valid JSON: lone surrogate \\ud800"]),
        ("jsonl", '{"input": 1}\n{"input": ' + DEEP + "}\n", ["row 2 is nested deeper than 64 levels"]),
        (
            "json",
            '[{"input": 1}, {"input": {"x": 1e999}, "context": "\\udc00"}]',
            [
                "row 2: input is not valid JSON: Infinity",
                "row 2: context is not valid JSON: lone surrogate \\udc00",
            ],
        ),
        (
            "json",
            '{"items": [{"input": 1}, {"input": 2, "expectedOutput": NaN}]}',
            [
                "row 2: expectedOutput is not valid JSON: NaN",
            ],
        ),
        ("json", DEEP, ["The file is nested deeper than 64 levels"]),
        (
            "json",
            '[\n  {"input": 1},\n  {"input": ' + DEEP + "}\n]",
            [
                "The file is nested deeper than 64 levels (line 3)",
            ],
        ),
        (
            "csv",
            'q,meta\nfine,"[1]"\nbad,"[NaN]"\ndeep,"' + DEEP + '"\n',
            [
                "row 3: column meta is not valid JSON: NaN",
                "row 4: column meta is nested deeper than 64 levels",
            ],
        ),
        # Two columns mapped to the input make an object: one level deeper than each cell.
        ("csv", 'q,meta\nfine,"' + "[" * 64 + "]" * 64 + '"\n', ["row 2: input is nested deeper than 64 levels"]),
    ],
)
def test_json_that_cannot_be_stored_refuses_the_file_naming_the_row(make_dataset, fmt, text, errors):
    dataset = make_dataset(name="Empty")
    with pytest.raises(ImportFileError) as caught:
        importers.import_items(dataset=dataset, text=text, fmt=fmt, mapping={"q": "input", "meta": "input"})
    assert caught.value.errors == errors
    dataset.refresh_from_db()
    assert dataset.version == 0 and not dataset.items.exists()
