"""Applying a dataset's schemas to a write is bounded (`schemas.MAX_STEPS`):
`$ref`s let a schema of a few hundred bytes apply its parts to an item
exponentially often, which held a web worker for hours (and with `allOf`
filled its memory with errors). Such a write is refused with 400 naming the
schema, in a bounded time; ordinary items, even large ones, are not affected."""

import threading
import time

import pytest
from django.db import connection

from datasets_app import schemas
from datasets_app.models import DatasetItem

LEVELS = 40  # 2**40 applications without the bound


def doubling_schema(combinator: str) -> dict:
    """Each level applies the next one twice; the last refuses a string."""
    levels = {f"l{n}": {combinator: [{"$ref": f"#/$defs/l{n + 1}"}] * 2} for n in range(LEVELS)}
    return {"$defs": {**levels, f"l{LEVELS}": {"type": "integer"}}, "$ref": "#/$defs/l0"}


def create(api, schema):
    response = api.post("/api/datasets", {"name": "Doubling", "inputSchema": schema}, format="json")
    assert response.status_code == 201
    return response.json()["id"]


def within(seconds: float, request):
    """The response to `request(client)`, sent from a thread that must finish in time."""
    answered = []

    def send():
        try:
            answered.append(request())
        finally:
            connection.close()

    thread = threading.Thread(target=send, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), f"no answer within {seconds} s"
    assert answered, "the request raised"
    return answered[0], time.monotonic() - started


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setattr(schemas, "MAX_STEPS", 20_000)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("combinator", "reason"),
    [
        ("anyOf", "applying it takes more than 20,000 steps"),
        # Every branch's errors are kept: the error bound comes first.
        ("allOf", "applying it finds more than 50,000 errors"),
    ],
)
def test_a_schema_whose_refs_multiply_the_work_refuses_the_item_in_bounded_time(api, small_budget, combinator, reason):
    dataset_id = create(api, doubling_schema(combinator))

    response, _ = within(30, lambda: api.post(f"/api/datasets/{dataset_id}/items", {"input": "x"}, format="json"))

    assert response.status_code == 400
    assert response.json()["errors"]["input"] == [
        f"the dataset's input schema cannot be applied: {reason} (do its $refs multiply the work?)"
    ]
    assert not DatasetItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_items_of_one_bulk_add_share_the_budget(api, monkeypatch):
    schema = {"type": "object", "properties": {"question": {"type": "string", "minLength": 1}}}
    dataset_id = create(api, schema)
    one_item = [{"input": {"question": "?"}}]
    monkeypatch.setattr(schemas, "MAX_STEPS", 1_000)

    assert api.post(f"/api/datasets/{dataset_id}/items/bulk", {"items": one_item}, format="json").status_code == 201
    response = api.post(f"/api/datasets/{dataset_id}/items/bulk", {"items": one_item * 500}, format="json")

    assert response.status_code == 400
    assert "applying it takes more than 1,000 steps" in str(response.json()["errors"])
    assert DatasetItem.objects.count() == 1


@pytest.mark.django_db
def test_a_large_item_is_well_within_the_budget(api):
    schema = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"q": {"type": "string"}, "a": {"type": "number"}},
            "required": ["q"],
        },
    }
    dataset_id = create(api, schema)

    response = api.post(
        f"/api/datasets/{dataset_id}/items", {"input": [{"q": "x", "a": n} for n in range(20_000)]}, format="json"
    )

    assert response.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_the_default_bounds_refuse_it_within_seconds(api):
    dataset_id = create(api, doubling_schema("anyOf"))

    response, took = within(60, lambda: api.post(f"/api/datasets/{dataset_id}/items", {"input": "x"}, format="json"))

    assert response.status_code == 400
    assert "(do its $refs multiply the work?)" in response.json()["errors"]["input"][0]
    print(f"\nrefused in {took:.1f} s")
