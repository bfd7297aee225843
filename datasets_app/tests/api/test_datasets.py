import json

import pytest

pytestmark = pytest.mark.django_db


def ordered(response):
    """The JSON body with key order kept, as pairs all the way down."""
    return json.loads(response.content, object_pairs_hook=lambda pairs: pairs)


def test_create_dataset_returns_camel_case_fields_and_user_json_verbatim(api):
    body = (
        '{"name":"Support","description":"tickets",'
        '"metadata":{"zeta":1,"user_name":"x","someKey":{"b":2,"a":1}},'
        '"inputSchema":{"type":"object","properties":{"question":{"type":"string"}},"required":["question"]}}'
    )
    response = api.post("/api/datasets", body, content_type="application/json")

    assert response.status_code == 201
    data = response.json()
    assert set(data) == {
        "id",
        "projectId",
        "name",
        "description",
        "metadata",
        "inputSchema",
        "outputSchema",
        "annotationConfig",
        "version",
        "itemCount",
        "createdAt",
        "updatedAt",
    }
    assert data["annotationConfig"] == [{"name": "human", "labels": ["good", "bad", "unsure"]}]
    assert data["version"] == 0 and data["itemCount"] == 0 and data["outputSchema"] is None
    assert data["createdAt"].endswith("Z")
    assert b'"metadata":{"zeta":1,"user_name":"x","someKey":{"b":2,"a":1}}' in response.content


def test_list_datasets_is_paginated(api, make_dataset):
    for n in range(12):
        make_dataset(name=f"set {n}")

    first = api.get("/api/datasets").json()
    last = api.get("/api/datasets", {"page": 1, "perPage": 10}).json()

    assert len(first["datasets"]) == 10
    assert first["pagination"] == {"total": 12, "page": 0, "perPage": 10, "hasMore": True}
    assert len(last["datasets"]) == 2
    assert last["pagination"] == {"total": 12, "page": 1, "perPage": 10, "hasMore": False}
    assert api.get("/api/datasets", {"page": 5}).json()["datasets"] == []


@pytest.mark.parametrize(
    "query, field",
    [
        ({"page": -1}, "page"),
        ({"perPage": 0}, "perPage"),
        ({"perPage": 1001}, "perPage"),
        ({"perPage": "abc"}, "perPage"),
        ({"page": "1.5"}, "page"),
        ({"page": 10**30}, "page"),
    ],
)
def test_bad_pagination_is_400_naming_the_parameter(api, query, field):
    response = api.get("/api/datasets", query)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert response.json()["message"]


def test_per_page_1000_is_allowed(api, make_dataset):
    make_dataset()
    assert api.get("/api/datasets", {"perPage": 1000}).json()["pagination"]["perPage"] == 1000


def test_create_dataset_requires_a_name(api):
    response = api.post("/api/datasets", {"name": "   "}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["errors"]


def test_invalid_json_schema_is_rejected(api):
    response = api.post("/api/datasets", {"name": "x", "inputSchema": {"type": "nonsense"}}, format="json")

    assert response.status_code == 400
    assert "inputSchema" in response.json()["errors"]


def test_patch_changes_only_the_fields_sent(api, make_dataset):
    dataset = make_dataset(name="Old", description="keep me", metadata={"a": 1})

    response = api.patch(f"/api/datasets/{dataset.id}", {"name": "New"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "New"
    assert response.json()["description"] == "keep me"
    assert response.json()["metadata"] == {"a": 1}


def test_patch_can_clear_a_schema(api, make_dataset):
    dataset = make_dataset(input_schema={"type": "object"})

    response = api.patch(f"/api/datasets/{dataset.id}", {"inputSchema": None}, format="json")

    assert response.json()["inputSchema"] is None


def test_delete_dataset(api, capitals):
    response = api.delete(f"/api/datasets/{capitals.id}")

    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert api.get(f"/api/datasets/{capitals.id}").status_code == 404


def test_dataset_versions_list_newest_first(api, capitals):
    item = capitals.items.first()
    api.patch(f"/api/datasets/{capitals.id}/items/{item.id}", {"context": {"n": 1}}, format="json")

    data = api.get(f"/api/datasets/{capitals.id}/versions").json()

    assert [v["version"] for v in data["versions"]] == [2, 1]
    assert set(data["versions"][0]) == {"id", "datasetId", "version", "createdAt"}
    assert data["versions"][0]["datasetId"] == str(capitals.id)
    assert data["pagination"]["total"] == 2
