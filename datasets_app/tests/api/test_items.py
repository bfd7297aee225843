import pytest

from datasets_app.models import DatasetItem

pytestmark = pytest.mark.django_db

QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}},
    "required": ["question"],
}


def items_url(dataset):
    return f"/api/datasets/{dataset.id}/items"


def test_item_json_round_trips_byte_for_byte(api, make_dataset):
    dataset = make_dataset()
    raw_input = '{"zebra":1,"user_name":"ann","someKey":{"z":[3,2,1],"a":null},"émoji":"✓"}'
    raw_expected = '{"b":"B","a":"A"}'
    body = f'{{"input":{raw_input},"expectedOutput":{raw_expected},"context":["x",{{"k_1":1.5}}]}}'

    created = api.post(items_url(dataset), body.encode(), content_type="application/json")
    fetched = api.get(f"{items_url(dataset)}/{created.json()['id']}")
    listed = api.get(items_url(dataset))

    assert created.status_code == 201
    for response in (created, fetched, listed):
        text = response.content.decode()
        assert f'"input":{raw_input}' in text
        assert f'"expectedOutput":{raw_expected}' in text
        assert '"context":["x",{"k_1":1.5}]' in text


def test_item_shape(api, capitals):
    item = api.get(items_url(capitals)).json()["items"][0]

    assert set(item) == {
        "id",
        "datasetId",
        "version",
        "input",
        "expectedOutput",
        "context",
        "metadata",
        "split",
        "createdAt",
        "updatedAt",
    }
    assert item["metadata"] is None and item["split"] is None
    assert item["datasetId"] == str(capitals.id)
    assert item["version"] == 1


def test_item_breaking_the_schema_is_400_naming_the_path(api, make_dataset):
    dataset = make_dataset(input_schema=QUESTION_SCHEMA)

    response = api.post(items_url(dataset), {"input": {"question": 42}}, format="json")

    assert response.status_code == 400
    assert "input/question" in response.json()["errors"]
    assert "input/question" in response.json()["message"]
    assert DatasetItem.objects.count() == 0


def test_item_without_input_is_400(api, capitals):
    response = api.post(items_url(capitals), {"expectedOutput": "x"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["input"]


def test_add_update_delete_each_bump_the_dataset_version(api, make_dataset):
    dataset = make_dataset()

    item = api.post(items_url(dataset), {"input": "one"}, format="json").json()
    assert api.get(f"/api/datasets/{dataset.id}").json()["version"] == 1

    updated = api.patch(f"{items_url(dataset)}/{item['id']}", {"input": "two"}, format="json")
    assert updated.json()["input"] == "two" and updated.json()["version"] == 2
    assert api.get(f"/api/datasets/{dataset.id}").json()["version"] == 2

    assert api.delete(f"{items_url(dataset)}/{item['id']}").json() == {"success": True}
    detail = api.get(f"/api/datasets/{dataset.id}").json()
    assert detail["version"] == 3 and detail["itemCount"] == 0
    assert api.get(f"{items_url(dataset)}/{item['id']}").status_code == 404


def test_patch_keeps_fields_not_sent_and_can_null_expected_output(api, capitals):
    item = capitals.items.order_by("created_at").first()

    data = api.patch(f"{items_url(capitals)}/{item.id}", {"expectedOutput": None}, format="json").json()

    assert data["input"] == item.input
    assert data["expectedOutput"] is None


def test_patch_breaking_the_schema_is_400(api, make_dataset):
    dataset = make_dataset(input_schema=QUESTION_SCHEMA, items=[{"input": {"question": "q"}}])
    item = dataset.items.get()

    response = api.patch(f"{items_url(dataset)}/{item.id}", {"input": {}}, format="json")

    assert response.status_code == 400
    assert "input" in response.json()["errors"]
    assert api.get(f"/api/datasets/{dataset.id}").json()["version"] == 1


def test_listing_at_an_old_version_shows_the_old_snapshot(api, make_dataset):
    dataset = make_dataset(items=[{"input": {"q": "old"}, "expectedOutput": "A"}])
    item = dataset.items.get()
    api.patch(f"{items_url(dataset)}/{item.id}", {"input": {"q": "new"}}, format="json")
    api.post(items_url(dataset), {"input": {"q": "added later"}}, format="json")

    at_v1 = api.get(items_url(dataset), {"version": 1}).json()
    now = api.get(items_url(dataset)).json()

    assert [i["input"] for i in at_v1["items"]] == [{"q": "old"}]
    assert at_v1["items"][0]["id"] == str(item.id)
    assert at_v1["items"][0]["version"] == 1
    assert at_v1["items"][0]["expectedOutput"] == "A"
    assert at_v1["pagination"]["total"] == 1
    assert sorted(i["input"]["q"] for i in now["items"]) == ["added later", "new"]


def test_deleted_item_is_still_listed_at_the_version_before_its_deletion(api, capitals):
    item = capitals.items.first()
    api.delete(f"{items_url(capitals)}/{item.id}")

    assert api.get(items_url(capitals), {"version": 1}).json()["pagination"]["total"] == 3
    assert api.get(items_url(capitals), {"version": 2}).json()["pagination"]["total"] == 2


def test_version_beyond_the_latest_is_400(api, capitals):
    for version in (99, -1, "x"):
        response = api.get(items_url(capitals), {"version": version})
        assert response.status_code == 400
        assert list(response.json()["errors"]) == ["version"]


def test_search_matches_item_text(api, capitals):
    now = api.get(items_url(capitals), {"search": "japan"}).json()
    old = api.get(items_url(capitals), {"search": "japan", "version": 1}).json()

    assert [i["expectedOutput"] for i in now["items"]] == ["Tokyo"]
    assert now["pagination"]["total"] == 1
    assert [i["expectedOutput"] for i in old["items"]] == ["Tokyo"]


def test_items_pagination(api, make_dataset):
    dataset = make_dataset(items=[{"input": n} for n in range(25)])

    pages = [api.get(items_url(dataset), {"page": p, "perPage": 10}).json() for p in range(3)]

    assert [len(p["items"]) for p in pages] == [10, 10, 5]
    assert [p["pagination"]["hasMore"] for p in pages] == [True, True, False]
    assert all(p["pagination"]["total"] == 25 for p in pages)
    assert sorted(i["input"] for p in pages for i in p["items"]) == list(range(25))


def test_bulk_add_is_one_version(api, make_dataset):
    dataset = make_dataset()

    response = api.post(
        f"{items_url(dataset)}/bulk", {"items": [{"input": "a"}, {"input": "b", "expectedOutput": "B"}]}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["count"] == 2
    assert [i["input"] for i in response.json()["items"]] == ["a", "b"]
    detail = api.get(f"/api/datasets/{dataset.id}").json()
    assert detail["version"] == 1 and detail["itemCount"] == 2


def test_bulk_add_is_all_or_nothing(api, make_dataset):
    dataset = make_dataset(input_schema=QUESTION_SCHEMA)

    response = api.post(
        f"{items_url(dataset)}/bulk",
        {"items": [{"input": {"question": "fine"}}, {"input": {"question": 1}}]},
        format="json",
    )

    assert response.status_code == 400
    assert "items/1/input/question" in response.json()["errors"]
    assert DatasetItem.objects.filter(dataset=dataset).count() == 0
    assert api.get(f"/api/datasets/{dataset.id}").json()["version"] == 0


def test_field_errors_use_the_apis_names_and_keep_the_users_own(api, make_dataset):
    """Services say `expected_output`; the API answers `expectedOutput`, while the
    names inside the user's JSON (`user_name`) are never re-cased."""
    schema = {"type": "object", "properties": {"user_name": {"type": "string"}}}
    dataset = make_dataset(input_schema=schema, output_schema=schema)
    bad = {"input": {"user_name": 1}, "expectedOutput": {"user_name": 2}}

    one = api.post(items_url(dataset), bad, format="json").json()
    bulk = api.post(f"{items_url(dataset)}/bulk", {"items": [{"input": {}}, bad]}, format="json").json()

    assert list(one["errors"]) == ["input/user_name", "expectedOutput/user_name"]
    assert one["message"] == "Invalid input/user_name: 1 is not of type 'string'"
    assert list(bulk["errors"]) == ["items/1/input/user_name", "items/1/expectedOutput/user_name"]


def test_bulk_add_entry_without_input_names_its_index(api, make_dataset):
    dataset = make_dataset()

    response = api.post(f"{items_url(dataset)}/bulk", {"items": [{"input": 1}, {"context": 2}]}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["items/1/input"]


def test_bulk_add_empty_list_is_400(api, make_dataset):
    response = api.post(f"{items_url(make_dataset())}/bulk", {"items": []}, format="json")

    assert response.status_code == 400
    assert "items" in response.json()["errors"]


def test_bulk_delete(api, capitals):
    ids = [str(i) for i in capitals.items.values_list("id", flat=True)[:2]]

    response = api.delete(f"{items_url(capitals)}/bulk", {"itemIds": ids}, format="json")

    assert response.status_code == 200
    assert response.json() == {"success": True, "deletedCount": 2}
    detail = api.get(f"/api/datasets/{capitals.id}").json()
    assert detail["itemCount"] == 1 and detail["version"] == 2


def test_bulk_delete_ignores_items_of_another_dataset(api, capitals, make_dataset):
    other = make_dataset(name="Other", items=[{"input": "x"}])

    response = api.delete(f"{items_url(capitals)}/bulk", {"itemIds": [str(other.items.get().id)]}, format="json")

    assert response.json()["deletedCount"] == 0
    assert other.items.live().count() == 1


def test_bulk_delete_rejects_non_uuid_ids(api, capitals):
    response = api.delete(f"{items_url(capitals)}/bulk", {"itemIds": ["nope"]}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["itemIds/0"]


def test_item_versions_include_the_tombstone(api, capitals):
    item = capitals.items.first()
    api.patch(f"{items_url(capitals)}/{item.id}", {"input": {"question": "changed"}}, format="json")
    api.delete(f"{items_url(capitals)}/{item.id}")

    data = api.get(f"{items_url(capitals)}/{item.id}/versions").json()

    versions = data["versions"]
    assert [v["versionNumber"] for v in versions] == [3, 2, 1]
    assert [v["datasetVersion"] for v in versions] == [3, 2, 1]
    assert [v["isDeleted"] for v in versions] == [True, False, False]
    assert versions[1]["snapshot"]["input"] == {"question": "changed"}
    assert set(versions[0]) == {
        "id",
        "itemId",
        "datasetId",
        "versionNumber",
        "datasetVersion",
        "snapshot",
        "isDeleted",
        "createdAt",
    }
    assert data["pagination"]["total"] == 3


def test_item_of_another_dataset_is_404(api, capitals, make_dataset):
    other = make_dataset(name="Other", items=[{"input": "x"}])
    foreign = other.items.get()

    for method, path in [
        ("get", f"{items_url(capitals)}/{foreign.id}"),
        ("patch", f"{items_url(capitals)}/{foreign.id}"),
        ("delete", f"{items_url(capitals)}/{foreign.id}"),
        ("get", f"{items_url(capitals)}/{foreign.id}/versions"),
    ]:
        response = getattr(api, method)(path, {"input": "hijack"} if method == "patch" else None, format="json")
        assert response.status_code == 404, (method, path)
        assert "message" in response.json()
    untouched = other.items.get()
    assert (untouched.input, untouched.is_deleted, untouched.version) == ("x", False, 1)
