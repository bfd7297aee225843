"""What the API refuses before storing: JSON too deep to store, schemas that are not schemas."""

import json

import pytest

from datasets_app.jsonsafe import MAX_JSON_DEPTH
from datasets_app.models import Dataset

pytestmark = pytest.mark.django_db


def nested(depth):
    return "[" * depth + "]" * depth


def test_nesting_over_the_limit_is_400_and_up_to_it_is_stored(api, capitals):
    url = f"/api/datasets/{capitals.id}/items"
    # The body is one level more than its input.
    deep = api.post(url, f'{{"input": {nested(MAX_JSON_DEPTH)}}}', content_type="application/json")
    fine = api.post(url, f'{{"input": {nested(MAX_JSON_DEPTH - 1)}}}', content_type="application/json")

    assert deep.status_code == 400
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in deep.json()["message"]
    assert fine.status_code == 201
    assert api.get(f"{url}/{fine.json()['id']}").json()["input"] == json.loads(nested(MAX_JSON_DEPTH - 1))


@pytest.mark.parametrize("schema", [0, "object", [], 1.5])
def test_a_schema_that_is_not_an_object_or_boolean_is_400_naming_the_field(api, schema):
    response = api.post("/api/datasets", {"name": "x", "outputSchema": schema}, format="json")

    assert response.status_code == 400
    assert "outputSchema" in response.json()["message"]
    assert "an object or a boolean" in response.json()["errors"]["outputSchema"][0]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("dialect", [[], {}, 7])
def test_a_non_string_dollar_schema_is_400(api, capitals, dialect):
    response = api.patch(f"/api/datasets/{capitals.id}", {"inputSchema": {"$schema": dialect}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["inputSchema"] == ["$schema must be a string"]
