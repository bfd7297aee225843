"""Downloads: items (current, at a version) and run results, as CSV and JSONL."""

import csv
import io
import json
import math
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from datasets_app import services
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return response.getvalue().decode()


def test_items_csv(browser_client, make_dataset):
    dataset = make_dataset(
        name="Mixed set",
        items=[{"input": {"q": "2+2", "tags": ["math"]}, "expectedOutput": 4, "context": "adding"}],
    )
    response = browser_client.get(reverse("dataset-export", args=[dataset.id, "csv"]))
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="Mixed-set-v1.csv"'
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert len(rows) == 1
    assert json.loads(rows[0]["input"]) == {"q": "2+2", "tags": ["math"]}
    assert rows[0]["expectedOutput"] == "4" and rows[0]["context"] == "adding"
    assert rows[0]["id"] == str(dataset.items.get().id)


def test_items_jsonl_at_an_old_version(browser_client, capitals):
    france = next(i for i in capitals.items.all() if "France" in i.input["question"])
    services.item_update(item=france, expected_output="Paris!")
    url = reverse("dataset-export", args=[capitals.id, "jsonl"])
    current = [json.loads(line) for line in body(browser_client.get(url)).splitlines()]
    old = [json.loads(line) for line in body(browser_client.get(url, {"version": 1})).splitlines()]
    assert sorted(r["expectedOutput"] for r in current) == ["Lima", "Paris!", "Tokyo"]
    assert sorted(r["expectedOutput"] for r in old) == ["Lima", "Paris", "Tokyo"]
    assert set(old[0]) == {"id", "input", "expectedOutput", "context", "metadata", "split", "version", "createdAt"}


def test_unknown_export_format_is_404(browser_client, capitals):
    assert browser_client.get(reverse("dataset-export", args=[capitals.id, "xlsx"])).status_code == 404


@pytest.fixture
def finished_run(capitals):
    run = make_run(capitals)
    start = timezone.now()
    items = list(capitals.items.order_by("created_at", "id"))
    add_result(run, items[0], output="Paris", latency=12.5, trace_id="a" * 32, started_at=start)
    add_result(
        run, items[1], error="timeout", latency=3.0, retry_count=2, score=None, started_at=start + timedelta(seconds=1)
    )
    end_run(run)
    return run


def test_run_results_csv(browser_client, finished_run):
    url = reverse("run-results-export", args=[finished_run.dataset_id, finished_run.id, "csv"])
    response = browser_client.get(url)
    assert response["Content-Disposition"].startswith('attachment; filename="Capitals-echo-')
    rows = list(csv.DictReader(io.StringIO(body(response))))
    assert list(rows[0]) == [
        "runName",
        "runTags",
        "itemId",
        "repetition",
        "input",
        "output",
        "expectedOutput",
        "error",
        "latency",
        "retryCount",
        "traceId",
        "scores",
        "annotations",
    ]
    assert rows[0]["output"] == "Paris" and rows[0]["traceId"] == "a" * 32 and rows[0]["latency"] == "12.5"
    assert json.loads(rows[0]["scores"])[0]["score"] == 1.0
    assert rows[1]["error"] == "timeout" and rows[1]["retryCount"] == "2" and rows[1]["output"] == ""
    assert rows[0]["runName"] == finished_run.name and rows[0]["runTags"] == "[]"


def test_run_results_jsonl(browser_client, finished_run):
    url = reverse("run-results-export", args=[finished_run.dataset_id, finished_run.id, "jsonl"])
    rows = [json.loads(line) for line in body(browser_client.get(url)).splitlines()]
    assert [r["error"] for r in rows] == [None, "timeout"]
    assert rows[0]["scores"][0]["scorerId"] == "exact-match" and rows[1]["traceId"] is None


def test_run_export_under_another_dataset_is_404(browser_client, finished_run, make_dataset):
    other = make_dataset(name="Other")
    url = reverse("run-results-export", args=[other.id, finished_run.id, "csv"])
    assert browser_client.get(url).status_code == 404


def strict_json(line: str):
    """A parser that takes only JSON: no NaN/Infinity, no overflowing number, no lone surrogate."""

    def finite(text):
        value = float(text)
        assert math.isfinite(value), f"{text} is out of range"
        return value

    def refuse(name):
        raise AssertionError(f"{name} is not JSON")

    value = json.loads(line, parse_constant=refuse, parse_float=finite)
    json.dumps(value, ensure_ascii=False).encode()  # a lone surrogate cannot be encoded
    return value


def test_items_from_every_door_export_as_strict_jsonl(browser_client, api, make_dataset):
    dataset = make_dataset(name="Doors")
    items_url = f"/api/datasets/{dataset.id}/items"
    tricky = '{"emoji": "\\ud83d\\ude00", "big": 1e308, "tiny": -5e-324, "nested": ' + "[" * 60 + "]" * 60 + "}"
    unstorable = ["NaN", "1e999", '"\\ud800"', "[" * 100 + "]" * 100]

    def upload(name, text):
        file = SimpleUploadedFile(name, text.encode())
        browser_client.post(reverse("dataset-import", args=[dataset.id]), {"file": file, "format": ""})
        review = reverse("dataset-import-review", args=[dataset.id])
        return browser_client.post(review, {"step": "import", "col_0": "input"})

    def csv(text):
        return 'input\n"' + text.replace('"', '""') + '"\n'

    # Each door takes the tricky but valid JSON, and refuses what cannot be stored.
    assert api.post(items_url, f'{{"input": {tricky}}}', content_type="application/json").status_code == 201
    bulk = f'{{"items": [{{"input": "a"}}, {{"input": "b", "context": {tricky}}}]}}'
    assert api.post(f"{items_url}/bulk", bulk, content_type="application/json").status_code == 201
    assert upload("rows.jsonl", f'{{"input": {tricky}}}\n').status_code == 302
    assert upload("rows.json", f'[{{"input": 1, "expectedOutput": {tricky}}}]').status_code == 302
    assert upload("rows.csv", csv(tricky)).status_code == 302
    assert browser_client.post(reverse("item-create", args=[dataset.id]), {"input": tricky}).status_code == 302
    edited = dataset.items.get(input="a")
    edit_url = reverse("item-edit", args=[dataset.id, edited.id])
    assert browser_client.post(edit_url, {"input": tricky, "context": tricky}).status_code == 302
    for text in unstorable:
        assert api.post(items_url, f'{{"input": {text}}}', content_type="application/json").status_code == 400
        bulk = f'{{"items": [{{"input": 1}}, {{"input": {text}}}]}}'
        assert api.post(f"{items_url}/bulk", bulk, content_type="application/json").status_code == 400
        patch = f'{{"input": {text}}}'
        assert api.patch(f"{items_url}/{edited.id}", patch, content_type="application/json").status_code == 400
        assert upload("bad.jsonl", f'{{"input": {text}}}\n').status_code == 400
        assert upload("bad.json", f'[{{"input": {text}}}]').status_code == 400
        assert upload("bad.csv", csv(f"[{text}]")).status_code == 400  # a CSV cell is JSON when it looks like it
        assert browser_client.post(reverse("item-create", args=[dataset.id]), {"input": text}).status_code == 400
        assert browser_client.post(edit_url, {"input": text}).status_code == 400

    export = body(browser_client.get(reverse("dataset-export", args=[dataset.id, "jsonl"])))
    rows = [strict_json(line) for line in export.splitlines()]
    assert len(rows) == 7 == dataset.items.count()
    assert all(json.loads(tricky) in (row["input"], row["expectedOutput"], row["context"]) for row in rows)
