"""The JSON gate: what may be stored, and what each refusal says."""

import json
import math

import pytest
from django.db import transaction

from datasets_app import jsonsafe
from datasets_app.jsonsafe import MAX_JSON_DEPTH, UnsafeJSON, check_json, loads_checked
from datasets_app.models import Dataset, DatasetItem


def nested(depth, leaf=1):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_check_json_returns_the_stored_text():
    value = {"b": [1, 2.5, None], "a": "é✓", 1: (True,)}
    assert check_json(value, label="x") == '{"b":[1,2.5,null],"a":"é✓","1":[true]}'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "output is not valid JSON: NaN"),
        ({"score": float("inf")}, "output is not valid JSON: Infinity"),
        ([-float("inf")], "output is not valid JSON: -Infinity"),
        ({"text": "ok \ud800"}, "output is not valid JSON: lone surrogate \\ud800"),
        ({"k\udfff": 1}, "output is not valid JSON: lone surrogate \\udfff"),
        (nested(MAX_JSON_DEPTH + 1), f"output is nested deeper than {MAX_JSON_DEPTH} levels"),
        (nested(10_000), f"output is nested deeper than {MAX_JSON_DEPTH} levels"),
        ({"at": object()}, "output is not JSON-serialisable: Object of type object is not JSON serializable"),
        ({(1, 2): "x"}, "output is not JSON-serialisable: keys must be str, int, float, bool or None, not tuple"),
    ],
)
def test_check_json_refuses_what_cannot_be_stored(value, message):
    with pytest.raises(UnsafeJSON) as caught:
        check_json(value, label="output")
    assert str(caught.value) == message


def test_nesting_up_to_the_limit_is_accepted():
    assert json.loads(check_json(nested(MAX_JSON_DEPTH), label="x")) == nested(MAX_JSON_DEPTH)
    assert loads_checked("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, label="x") == nested(MAX_JSON_DEPTH - 1, leaf=[])


def test_a_cycle_is_too_deep_not_a_hang():
    cycle: list[object] = []
    cycle.extend([cycle, cycle])
    with pytest.raises(UnsafeJSON, match="nested deeper"):
        check_json(cycle, label="output")


def test_size_limit():
    assert check_json("é" * 10, label="x", max_bytes=22) == '"' + "é" * 10 + '"'
    with pytest.raises(UnsafeJSON) as caught:
        check_json("é" * 10, label="output", max_bytes=21)
    assert str(caught.value) == "output is 22 bytes, over the 21 byte limit"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "body is not valid JSON: NaN"),
        ("[Infinity]", "body is not valid JSON: Infinity"),
        ("-Infinity", "body is not valid JSON: -Infinity"),
        ('{"a": 1e999}', "body is not valid JSON: Infinity"),
        ('["\\ud800"]', "body is not valid JSON: lone surrogate \\ud800"),
        ("[" * 10_000 + "]" * 10_000, f"body is nested deeper than {MAX_JSON_DEPTH} levels"),
        ("{\n" + "[" * 100_000, f"body is nested deeper than {MAX_JSON_DEPTH} levels (line 2)"),
        ("1" * 5000, "body is not valid JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_loads_checked_refuses_with_a_message_never_recursion_error(text, message):
    with pytest.raises(UnsafeJSON) as caught:
        loads_checked(text, label="body")
    assert str(caught.value).startswith(message)


def test_loads_checked_keeps_what_json_allows():
    text = '{"z": "\\ud83d\\ude00 [[[[", "big": 1e308, "nested": ' + "[" * 63 + "]" * 63 + ', "q": "\\"]]"}'
    assert loads_checked(text, label="x") == json.loads(text)


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps(["[" * 500, '\\"' + "{" * 500])
    assert loads_checked(text, label="x") == ["[" * 500, '\\"' + "{" * 500]


def test_malformed_text_is_a_json_decode_error():
    with pytest.raises(json.JSONDecodeError):
        loads_checked('{"a": ', label="x")
    with pytest.raises(json.JSONDecodeError):
        loads_checked('["unterminated ' + "[" * 100, label="x")


def test_loads_depth_checked_leaves_values_for_the_caller_to_check():
    assert math.isnan(jsonsafe.loads_depth_checked("[NaN]", label="x")[0])
    with pytest.raises(UnsafeJSON, match="nested deeper"):
        jsonsafe.loads_depth_checked("[" * 65 + "]" * 65, label="x")


@pytest.mark.django_db
def test_the_field_refuses_to_write_what_cannot_be_read_back(project):
    dataset = Dataset.objects.create(project=project, name="x")
    with pytest.raises(UnsafeJSON, match="Input is not valid JSON: NaN"), transaction.atomic():
        DatasetItem.objects.create(dataset=dataset, input={"x": float("nan")})
    with pytest.raises(UnsafeJSON, match="Metadata is nested deeper"), transaction.atomic():
        Dataset.objects.create(project=project, name="y", metadata=nested(100))
    assert not DatasetItem.objects.exists() and Dataset.objects.count() == 1
