"""Parsing and validating import files: nothing is written until the whole file is valid."""

import pytest

from datasets_app import exports, importers, services
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
        "row 4: unknown field expected_output (expected input, expectedOutput, context, metadata, split)",
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


# ---- columns into keys, empty cells, schemas -------------------------------------------

QUESTION_SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}


def test_columns_fill_keys_of_nested_objects():
    text = "q,lang,answer,source,page\nCapital of France?,en,Paris,atlas,12\n"
    mapping = {
        "q": "input.question",
        "lang": "input.language",
        "answer": "expectedOutput",
        "source": "context.source",
        "page": "context.page",
    }
    assert rows(importers.csv_items(text, mapping)) == [
        {
            "input": {"question": "Capital of France?", "language": "en"},
            "expectedOutput": "Paris",
            "context": {"source": "atlas", "page": 12},
        }
    ]


def test_whole_field_columns_and_keyed_columns_mix_only_as_objects():
    text = "city,country,extra\nParis,France,x\n"
    # Two whole-input columns are keys named after them, so keyed columns can join them.
    assert rows(importers.csv_items(text, {"city": "input", "country": "input", "extra": "input.note"})) == [
        {"input": {"city": "Paris", "country": "France", "note": "x"}}
    ]
    with pytest.raises(ImportFileError) as one_whole:
        importers.csv_items(text, {"city": "input", "country": "input.country"})
    assert one_whole.value.errors == [
        "column city is the whole input, so column country cannot fill input.country; map city to input.<key> too"
    ]
    with pytest.raises(ImportFileError) as clash:
        importers.csv_items(text, {"city": "input", "country": "input", "extra": "input.city"})
    assert clash.value.errors == ["columns city, extra all fill input.city; map one of them elsewhere"]


@pytest.mark.parametrize(
    ("mapping", "error"),
    [
        (
            {"a": "output"},
            "column a: unknown mapping 'output': use input, expectedOutput, context, metadata, split, ignore or <field>.<key>",
        ),
        ({"a": "input."}, "column a: mapping 'input.' needs a key after the dot"),
        ({"a": "context.x"}, "Map at least one column to the input."),
    ],
)
def test_unusable_mappings_are_refused_before_any_row(mapping, error):
    assert error in importers.check_mapping(["a"], mapping)
    with pytest.raises(ImportFileError) as caught:
        importers.csv_items("a\n1\n", mapping)
    assert error in caught.value.errors


def test_a_key_is_everything_after_the_first_dot():
    assert importers.parse_mapping("input.v1.2") == ("input", "v1.2")
    assert importers.parse_mapping("input") == ("input", None)
    assert importers.parse_mapping("ignore") is None
    assert importers.mapping_field("expectedOutput.answer") == "expectedOutput"
    assert importers.mapping_field("bogus") is None


def test_empty_cells_are_absent_not_null():
    text = "q,lang,answer,notes\nfirst,,Paris,\nsecond,fr,,\n,de,x,\n"
    mapping = {"q": "input.question", "lang": "input.language", "answer": "expectedOutput", "notes": "context"}
    items = rows(importers.csv_items(text, mapping))
    assert items == [
        {"input": {"question": "first"}, "expectedOutput": "Paris"},
        {"input": {"question": "second", "language": "fr"}},
        {"input": {"language": "de"}, "expectedOutput": "x"},
    ]
    assert all(None not in entry.values() for entry in items)


def test_an_input_of_empty_cells_only_is_an_error():
    mapping = {"q": "input.question", "lang": "input.language", "answer": "expectedOutput"}
    with pytest.raises(ImportFileError) as caught:
        importers.csv_items("q,lang,answer\nok,en,x\n , ,y\n", mapping)
    assert caught.value.errors == ["row 3: the input is empty"]


def test_empty_cells_are_never_reported_as_none(make_dataset):
    dataset = make_dataset(name="Q", input_schema=QUESTION_SCHEMA, output_schema={"type": "string"})
    text = "question,lang,answer\nfine,en,yes\n,en,no\n"
    with pytest.raises(ImportFileError) as caught:
        importers.prepare_import(
            dataset=dataset,
            text=text,
            fmt="csv",
            mapping={"question": "input.question", "lang": "input.lang", "answer": "expectedOutput"},
        )
    assert caught.value.errors == ["row 3: input: 'question' is a required property"]
    assert "None" not in caught.value.message + " ".join(caught.value.errors)


def test_items_with_empty_cells_are_stored_without_those_fields(make_dataset):
    dataset = make_dataset(name="Empty")
    created = importers.import_items(
        dataset=dataset, text="q,answer\nhello,\n", fmt="csv", mapping={"q": "input", "answer": "expectedOutput"}
    )
    assert [(item.input, item.expected_output, item.context) for item in created] == [("hello", None, None)]


FIFTY_QUESTIONS = "question\n" + "".join(f"What is {n} + {n}?\n" for n in range(50))


@pytest.mark.parametrize("how", ["mapped", "guessed"])
def test_fifty_questions_fill_an_object_input_schema(make_dataset, how):
    dataset = make_dataset(name="Questions", input_schema=QUESTION_SCHEMA)
    header, _ = importers.read_csv(FIFTY_QUESTIONS)
    if how == "mapped":
        mapping = {"question": "input.question"}
    else:
        guesses = importers.guess_mappings(
            header, input_schema=dataset.input_schema, output_schema=dataset.output_schema
        )
        mapping = dict(zip(header, guesses, strict=True))
        assert mapping == {"question": "input.question"}

    created = importers.import_items(dataset=dataset, text=FIFTY_QUESTIONS, fmt="csv", mapping=mapping)

    assert len(created) == 50
    assert sorted(item.input["question"] for item in created)[:2] == ["What is 0 + 0?", "What is 1 + 1?"]
    dataset.refresh_from_db()
    assert dataset.item_count == 50 and dataset.version == 1


def test_a_bare_input_for_an_object_schema_is_refused_with_a_hint(make_dataset):
    dataset = make_dataset(name="Questions", input_schema=QUESTION_SCHEMA)
    with pytest.raises(ImportFileError) as caught:
        importers.prepare_import(dataset=dataset, text=FIFTY_QUESTIONS, fmt="csv", mapping={"question": "input"})
    assert caught.value.message == (
        "Some rows do not match the dataset's schema. "
        "The input schema expects an object: map the columns to input.question."
    )
    assert caught.value.errors[0] == "row 2: input: 'What is 0 + 0?' is not of type 'object'"


@pytest.mark.parametrize(
    ("columns", "input_schema", "output_schema", "expected"),
    [
        # Columns named like schema properties fill them (case, spaces and punctuation aside).
        (
            ["Question", "Lang", "answer", "notes"],
            {"type": "object", "properties": {"question": {}, "lang": {}}},
            None,
            ["input.question", "input.lang", "expectedOutput", "ignore"],
        ),
        (
            ["q", "Final answer", "confidence"],
            None,
            {"type": "object", "properties": {"final_answer": {}, "confidence": {}}},
            ["input", "expectedOutput.final_answer", "expectedOutput.confidence"],
        ),
        # One property (or one required one): the input column fills it.
        (["prompt", "answer"], QUESTION_SCHEMA, None, ["input.question", "expectedOutput"]),
        (["text"], {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["b"]}, None, ["input.b"]),
        # Several properties and no column named like them: left to the user.
        (["text"], {"type": "object", "properties": {"a": {}, "b": {}}}, None, ["input"]),
        # A schema that is no object changes nothing.
        (["question", "answer"], {"type": "string"}, None, ["input", "expectedOutput"]),
    ],
)
def test_guesses_follow_the_schemas(columns, input_schema, output_schema, expected):
    assert importers.guess_mappings(columns, input_schema=input_schema, output_schema=output_schema) == expected


def test_mapping_choices_offer_whole_fields_keys_and_schema_properties():
    choices = importers.mapping_choices("lang", input_schema=QUESTION_SCHEMA)
    assert [value for value, _ in choices] == [
        "input",
        "expectedOutput",
        "context",
        "metadata",
        "split",
        "input.question",
        "input.lang",
        "expectedOutput.lang",
        "context.lang",
        "metadata.lang",
        "ignore",
    ]
    assert dict(choices)["input.question"] == "Input › question"
    # Every guess is one of its column's choices.
    header = ["question", "answer"]
    for column, guess in zip(header, importers.guess_mappings(header, input_schema=QUESTION_SCHEMA), strict=True):
        assert guess in dict(importers.mapping_choices(column, input_schema=QUESTION_SCHEMA))


def test_an_export_with_metadata_and_split_imports_back_with_them(make_dataset):
    source = make_dataset(name="Source")
    services.item_create(dataset=source, input="q1", expected_output="a1", metadata={"from": "run"}, split="2024")
    services.item_create(dataset=source, input="q2", split="train")
    text = b"".join(exports.export_items(source, "csv").streaming_content).decode()  # type: ignore[arg-type]
    header, _ = importers.read_csv(text)
    copy = make_dataset(name="Copy")

    importers.import_items(
        dataset=copy, text=text, fmt="csv", mapping=dict(zip(header, importers.guess_mappings(header), strict=True))
    )

    rows = sorted(copy.items.values_list("input", "metadata", "split"))
    assert rows == [("q1", {"from": "run"}, "2024"), ("q2", None, "train")]


def test_an_import_refuses_a_split_that_is_not_text_naming_the_row(make_dataset):
    dataset = make_dataset(name="Splits")

    with pytest.raises(importers.ImportFileError) as error:
        importers.import_items(dataset=dataset, text='{"input": "q", "split": 3}\n', fmt="jsonl")

    assert error.value.errors == ["row 1: split: Must be a string or null."]
    assert dataset.items.count() == 0
