"""Curation through the API: items made from results, item metadata and splits,
and runs on a split."""

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from datasets_app import projects, services
from datasets_app.models import Dataset, DatasetItem, DatasetRun
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db

QUESTION_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}},
    "required": ["question"],
}


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def from_results_url(dataset: Dataset) -> str:
    return f"/api/datasets/{dataset.pk}/items/from-results"


def items_url(dataset: Dataset) -> str:
    return f"/api/datasets/{dataset.pk}/items"


def version_of(dataset: Dataset) -> int:
    return Dataset.objects.get(pk=dataset.pk).version


@pytest.fixture
def graded(capitals):
    """A finished run of the capitals: right about France, wrong about Japan and Peru."""
    items = list(capitals.items.order_by("position"))
    services.item_update(item=items[2], context={"continent": "South America"})  # version 2; the run is on 1
    run = make_run(capitals, version=1)
    results = [add_result(run, item, output=out) for item, out in zip(items, ["Paris", "Kyoto", "Cusco"], strict=True)]
    end_run(run)
    return run, results


def test_results_become_items_of_another_dataset_as_one_version(api, capitals, graded, make_dataset):
    run, results = graded
    target = make_dataset("Regressions")

    response = api.post(
        from_results_url(target),
        {"runId": str(run.pk), "resultIds": [str(results[1].pk), str(results[2].pk)]},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 2
    assert [i["input"] for i in body["items"]] == [results[1].input, results[2].input]
    assert [i["expectedOutput"] for i in body["items"]] == ["Kyoto", "Cusco"]  # expectedFrom defaults to output
    assert body["items"][1]["metadata"]["source"] == {
        "runId": str(run.pk),
        "resultId": str(results[2].pk),
        "datasetId": str(capitals.pk),
        "itemId": str(results[2].item_id),
        "expectedFrom": "output",
    }
    assert body["items"][1]["context"] is None  # the item had no context at the version the run saw
    assert version_of(target) == 1
    assert api.get(f"/api/datasets/{target.pk}").json()["itemCount"] == 2
    assert [i["id"] for i in api.get(items_url(target), {"version": 1}).json()["items"]] == [
        i["id"] for i in reversed(body["items"])
    ]


def test_expected_from_expected_keeps_the_expected_output_and_a_split_can_be_given(api, capitals, graded):
    run, results = graded

    response = api.post(
        from_results_url(capitals),
        {"runId": str(run.pk), "resultIds": [str(results[1].pk)], "expectedFrom": "expected", "split": "hard"},
        format="json",
    )

    item = response.json()["items"][0]
    assert response.status_code == 201
    assert (item["expectedOutput"], item["split"]) == ("Tokyo", "hard")
    assert item["metadata"]["source"]["expectedFrom"] == "expected"
    assert [i["id"] for i in api.get(items_url(capitals), {"split": "hard"}).json()["items"]] == [item["id"]]


def test_a_run_of_another_project_is_refused(api, user, graded, make_dataset):
    run, results = graded
    elsewhere = make_dataset("Elsewhere", project=projects.project_create(user=user, name="Other team"))

    response = api.post(
        from_results_url(elsewhere), {"runId": str(run.pk), "resultIds": [str(results[0].pk)]}, format="json"
    )

    assert response.status_code == 400
    assert "another project" in response.json()["errors"]["runId"][0]
    assert version_of(elsewhere) == 0


def test_a_run_the_caller_cannot_see_is_not_found_as_an_unknown_id_is(api, make_dataset, django_user_model):
    mallory = django_user_model.objects.create_user(username="mallory", password="pw")
    hidden = services.dataset_create(project=projects.personal_project(mallory), name="Hidden")
    services.item_create(dataset=hidden, input="secret", expected_output="x")
    run = make_run(hidden)
    result = add_result(run, hidden.items.get())
    end_run(run)
    target = make_dataset("Mine")

    answers = [
        api.post(from_results_url(target), {"runId": run_id, "resultIds": [str(result.pk)]}, format="json")
        for run_id in (str(run.pk), str(uuid.uuid4()))
    ]

    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["errors"] == {"runId": ["Run not found."]}
    assert version_of(target) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resultIds": ["RESULT", "OTHER"]}, "resultIds"),
        ({"resultIds": []}, "resultIds"),
        ({"resultIds": "RESULT"}, "resultIds"),
        ({"resultIds": ["not-a-uuid"]}, "resultIds/0"),
        ({"resultIds": ["RESULT"], "expectedFrom": "reference"}, "expectedFrom"),
        ({"resultIds": ["RESULT"], "runId": "nope"}, "runId"),
        ({"resultIds": ["RESULT"], "split": "x" * 51}, "split"),
    ],
)
def test_bad_result_ids_are_400_naming_the_field_and_add_nothing(api, capitals, graded, body, field):
    run, results = graded
    body = {"runId": str(run.pk), **body}
    if isinstance(body["resultIds"], list):
        body["resultIds"] = [
            {"RESULT": str(results[0].pk), "OTHER": str(uuid.uuid4())}.get(v, v) for v in body["resultIds"]
        ]

    response = api.post(from_results_url(capitals), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert version_of(capitals) == 2
    assert DatasetItem.objects.filter(dataset=capitals).count() == 3


def test_results_breaking_the_destinations_input_schema_add_no_item(api, make_dataset):
    source = make_dataset("Prompts", items=[{"input": {"question": "ok?"}}, {"input": {"prompt": "no question"}}])
    run = make_run(source)
    results = [add_result(run, item) for item in source.items.order_by("position")]
    end_run(run)
    target = make_dataset("Questions only", input_schema=QUESTION_SCHEMA)

    response = api.post(
        from_results_url(target), {"runId": str(run.pk), "resultIds": [str(r.pk) for r in results]}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["items/1/input"]
    assert version_of(target) == 0 and not target.items.exists()


def test_curating_needs_an_editor_of_the_destination(user, graded, capitals, django_user_model):
    run, results = graded
    team = projects.project_create(user=user, name="Team")
    target = services.dataset_create(project=team, name="Team set")
    victor = django_user_model.objects.create_user(username="victor", password="pw")
    projects.member_set(project=team, username="victor", role="viewer")
    body = {"runId": str(run.pk), "resultIds": [str(results[0].pk)]}

    assert client_for(victor).post(from_results_url(target), body, format="json").status_code == 403
    assert client_for(victor).post(from_results_url(capitals), body, format="json").status_code == 404
    assert version_of(target) == 0


def test_items_take_metadata_and_a_split_on_add_update_and_bulk_add(api, make_dataset):
    dataset = make_dataset("Notes")

    raw = b'{"input":"q","metadata":{"z":1,"user_name":"ann"},"split":" train "}'
    created = api.post(items_url(dataset), raw, content_type="application/json")
    assert created.status_code == 201
    assert b'"metadata":{"z":1,"user_name":"ann"}' in created.content
    assert created.json()["split"] == "train"

    updated = api.patch(f"{items_url(dataset)}/{created.json()['id']}", {"split": None}, format="json").json()
    assert (updated["split"], updated["metadata"]) == (None, {"z": 1, "user_name": "ann"})

    bulk = api.post(
        f"{items_url(dataset)}/bulk",
        {"items": [{"input": 1, "split": "test"}, {"input": 2, "metadata": ["free", "form"]}]},
        format="json",
    ).json()
    assert [(i["split"], i["metadata"]) for i in bulk["items"]] == [("test", None), (None, ["free", "form"])]

    refused = api.post(f"{items_url(dataset)}/bulk", {"items": [{"input": 3}, {"input": 4, "split": 7}]}, format="json")
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["items/1/split"]
    assert api.post(items_url(dataset), {"input": 5, "split": "x" * 51}, format="json").json()["errors"].keys() == {
        "split"
    }


def test_item_lists_filter_by_split_now_and_at_a_version(api, make_dataset):
    dataset = make_dataset("Splits")
    ids = [
        api.post(items_url(dataset), {"input": n, "split": split}, format="json").json()["id"]
        for n, split in enumerate(["train", "test", "train", None])
    ]  # versions 1..4
    api.patch(f"{items_url(dataset)}/{ids[0]}", {"split": "test"}, format="json")  # version 5

    now = api.get(items_url(dataset), {"split": "train"}).json()
    before = api.get(items_url(dataset), {"split": "train", "version": 4}).json()

    assert [i["id"] for i in now["items"]] == [ids[2]] and now["pagination"]["total"] == 1
    assert [i["id"] for i in before["items"]] == [ids[2], ids[0]] and before["pagination"]["total"] == 2
    assert {i["split"] for i in before["items"]} == {"train"}
    assert api.get(items_url(dataset), {"split": "nope"}).json()["items"] == []
    assert api.get(items_url(dataset), {"split": ""}).json()["pagination"]["total"] == 4


@pytest.mark.django_db(transaction=True)  # the worker writes from threads of its own
def test_a_bulk_split_is_one_version_and_a_run_on_the_split_runs_only_its_items(api, capitals, run_worker):
    items = list(capitals.items.order_by("position"))
    url = f"{items_url(capitals)}/split"

    moved = api.post(url, {"itemIds": [str(items[0].pk), str(items[2].pk)], "split": "test"}, format="json")
    again = api.post(url, {"itemIds": [str(items[0].pk)], "split": "test"}, format="json")

    assert moved.status_code == 200 and moved.json() == {"success": True, "updatedCount": 2}
    assert again.json() == {"success": True, "updatedCount": 0}
    assert version_of(capitals) == 2
    assert {i["id"] for i in api.get(items_url(capitals), {"split": "test"}).json()["items"]} == {
        str(items[0].pk),
        str(items[2].pk),
    }

    started = api.post(
        f"/api/datasets/{capitals.pk}/runs",
        {"targetType": "workflow", "targetId": "echo", "split": "test"},
        format="json",
    )
    assert started.status_code == 201 and started.json()["totalItems"] == 2
    run = run_worker(started.json()["runId"])
    assert run.status == DatasetRun.Status.COMPLETED
    detail = api.get(f"/api/datasets/{capitals.pk}/runs/{run.pk}").json()
    assert detail["split"] == "test" and detail["succeededCount"] == 2
    results = api.get(f"/api/datasets/{capitals.pk}/runs/{run.pk}/results").json()["results"]
    assert {r["itemId"] for r in results} == {str(items[0].pk), str(items[2].pk)}

    every = api.post(f"/api/datasets/{capitals.pk}/runs", {"targetType": "workflow", "targetId": "echo"}, format="json")
    assert every.json()["totalItems"] == 3
    assert api.get(f"/api/datasets/{capitals.pk}/runs/{every.json()['runId']}").json()["split"] is None

    cleared = api.post(url, {"itemIds": [str(items[0].pk)], "split": None}, format="json")
    assert cleared.json()["updatedCount"] == 1 and version_of(capitals) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"itemIds": [], "split": "test"}, "itemIds"),
        ({"itemIds": ["not-a-uuid"], "split": "test"}, "itemIds/0"),
        ({"itemIds": ["ITEM"]}, "split"),
        ({"itemIds": ["ITEM"], "split": "x" * 51}, "split"),
        ({"itemIds": ["ITEM"], "split": 3}, "split"),
    ],
)
def test_a_bad_bulk_split_is_400_naming_the_field(api, capitals, body, field):
    item = capitals.items.first()
    body = {**body, "itemIds": [str(item.pk) if v == "ITEM" else v for v in body["itemIds"]]}

    response = api.post(f"{items_url(capitals)}/split", body, format="json")

    assert response.status_code == 400 and field in response.json()["errors"]
    assert version_of(capitals) == 1


def test_a_run_on_an_empty_or_bad_split_is_400_naming_split(api, capitals):
    url = f"/api/datasets/{capitals.pk}/runs"
    for split in ("nobody-here", "x" * 51, 5):
        response = api.post(url, {"targetType": "workflow", "targetId": "echo", "split": split}, format="json")
        assert response.status_code == 400 and "split" in response.json()["errors"], split
    assert not DatasetRun.objects.exists()


def test_a_viewer_cannot_move_items_between_splits(user, django_user_model, make_dataset):
    team = projects.project_create(user=user, name="Team")
    dataset = make_dataset("Team set", project=team, items=[{"input": 1}])
    victor = django_user_model.objects.create_user(username="victor", password="pw")
    projects.member_set(project=team, username="victor", role="viewer")

    response = client_for(victor).post(
        f"{items_url(dataset)}/split", {"itemIds": [str(dataset.items.get().pk)], "split": "test"}, format="json"
    )

    assert response.status_code == 403
    assert dataset.items.get().split is None
