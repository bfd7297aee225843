"""Human review through the API: annotations on results, what results and run
summaries show of them, and the dataset's annotation names."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from datasets_app import annotations, projects, services
from datasets_app.models import Annotation, Dataset
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db

ANNOTATION_FIELDS = {"id", "resultId", "name", "score", "label", "comment", "author", "createdAt", "updatedAt"}
QUESTIONS = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima")]


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def team(user, django_user_model):
    """Alice owns the team; Bob edits in it, Victor views it."""
    project = projects.project_create(user=user, name="Team")
    for username, role in (("bob", "editor"), ("victor", "viewer")):
        django_user_model.objects.create_user(username=username, password="pw")
        projects.member_set(project=project, username=username, role=role)
    return project


@pytest.fixture
def bob(team, django_user_model):
    return client_for(django_user_model.objects.get(username="bob"))


@pytest.fixture
def victor(team, django_user_model):
    return client_for(django_user_model.objects.get(username="victor"))


def finished_run(dataset: Dataset, outputs: list[Any] | None = None) -> tuple[Any, list[Any]]:
    items = list(dataset.items.order_by("position"))
    run = make_run(dataset)
    outputs = outputs or [item.expected_output for item in items]
    results = [add_result(run, item, output=output) for item, output in zip(items, outputs, strict=True)]
    end_run(run)
    return run, results


@pytest.fixture
def reviewed(team, make_dataset):
    dataset = make_dataset(
        "Capitals",
        project=team,
        items=[{"input": {"question": f"Capital of {c}?"}, "expectedOutput": a} for c, a in QUESTIONS],
    )
    run, results = finished_run(dataset)
    return dataset, run, results


def annotations_url(dataset: Dataset, run: Any, result: Any) -> str:
    return f"/api/datasets/{dataset.pk}/runs/{run.pk}/results/{result.pk}/annotations"


def test_annotate_list_update_and_delete(api, reviewed):
    dataset, run, results = reviewed
    url = annotations_url(dataset, run, results[0])

    created = api.post(url, {"score": 0.8, "label": "good", "comment": "close enough"}, format="json")

    assert created.status_code == 201
    annotation = created.json()
    assert set(annotation) == ANNOTATION_FIELDS
    assert {k: annotation[k] for k in ("resultId", "name", "score", "label", "comment", "author")} == {
        "resultId": str(results[0].pk),
        "name": "human",
        "score": 0.8,
        "label": "good",
        "comment": "close enough",
        "author": "alice",
    }
    assert api.get(url).json() == {"annotations": [annotation]}

    again = api.post(url, {"label": "bad"}, format="json")

    assert again.status_code == 200
    assert again.json()["id"] == annotation["id"]
    assert (again.json()["score"], again.json()["label"], again.json()["comment"]) == (None, "bad", "")
    assert Annotation.objects.count() == 1

    deleted = api.delete(f"{url}/{annotation['id']}")

    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert api.get(url).json() == {"annotations": []}
    assert api.delete(f"{url}/{annotation['id']}").status_code == 404


def test_each_reviewer_has_their_own_annotation_of_a_result(api, bob, reviewed):
    dataset, run, results = reviewed
    url = annotations_url(dataset, run, results[0])

    api.post(url, {"score": 1}, format="json")
    bobs = bob.post(url, {"score": 0, "label": "bad"}, format="json")

    assert bobs.status_code == 201
    listed = api.get(url).json()["annotations"]
    assert [(a["author"], a["score"], a["label"]) for a in listed] == [("alice", 1.0, None), ("bob", 0.0, "bad")]


def test_a_viewer_reads_annotations_but_cannot_write_or_delete_them(api, victor, reviewed):
    dataset, run, results = reviewed
    url = annotations_url(dataset, run, results[0])
    alices = api.post(url, {"label": "good"}, format="json").json()

    assert victor.get(url).json()["annotations"] == [alices]
    refused = victor.post(url, {"label": "bad"}, format="json")
    assert refused.status_code == 403
    assert "viewer" in refused.json()["message"] and "editor" in refused.json()["message"]
    assert victor.delete(f"{url}/{alices['id']}").status_code == 403
    assert list(Annotation.objects.values_list("label", flat=True)) == ["good"]


def test_an_editor_deletes_only_their_own_annotations_and_an_owner_anyones(api, bob, reviewed):
    dataset, run, results = reviewed
    url = annotations_url(dataset, run, results[0])
    alices = api.post(url, {"label": "good"}, format="json").json()
    bobs = bob.post(url, {"label": "bad"}, format="json").json()

    refused = bob.delete(f"{url}/{alices['id']}")

    assert refused.status_code == 403
    assert "alice" in refused.json()["message"] and "own" in refused.json()["message"]
    assert Annotation.objects.count() == 2
    assert api.delete(f"{url}/{bobs['id']}").json() == {"success": True}  # alice owns the project
    assert bob.delete(f"{url}/{alices['id']}").status_code == 403
    assert list(Annotation.objects.values_list("author__username", flat=True)) == ["alice"]


def test_results_runs_and_annotations_of_another_dataset_are_not_found(api, reviewed, team, make_dataset):
    dataset, run, results = reviewed
    other = make_dataset("Other", project=team, items=[{"input": "x", "expectedOutput": "x"}])
    other_run, other_results = finished_run(other)
    theirs = api.post(annotations_url(other, other_run, other_results[0]), {"label": "good"}, format="json").json()
    prefix = f"/api/datasets/{dataset.pk}/runs"

    assert api.get(f"{prefix}/{other_run.pk}/results/{other_results[0].pk}/annotations").status_code == 404
    assert api.get(f"{prefix}/{run.pk}/results/{other_results[0].pk}/annotations").status_code == 404
    assert api.post(f"{prefix}/{run.pk}/results/{other_results[0].pk}/annotations", {"label": "bad"}).status_code == 404
    assert api.delete(f"{annotations_url(dataset, run, results[0])}/{theirs['id']}").status_code == 404
    assert Annotation.objects.get().label == "good"


def test_outside_the_project_everything_is_not_found(reviewed, django_user_model, user):
    dataset, run, results = reviewed
    url = annotations_url(dataset, run, results[0])
    mine, _ = annotations.annotation_save(result=results[0], dataset=dataset, author=user, label="good")
    mallory = client_for(django_user_model.objects.create_user(username="mallory", password="pw"))

    assert mallory.get(url).status_code == 404
    assert mallory.post(url, {"label": "bad"}, format="json").status_code == 404
    assert mallory.delete(f"{url}/{mine.pk}").status_code == 404
    assert Annotation.objects.get().label == "good"


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"name": "robot", "score": 1}, "name", "one of: human"),
        ({"label": "meh"}, "label", "allowed: good, bad, unsure"),
        ({"label": 5}, "label", "string"),
        ({"score": 1.5}, "score", "between 0 and 1"),
        ({"score": -0.1}, "score", "between 0 and 1"),
        ({"score": "0.5"}, "score", "a number"),
        ({"score": True}, "score", "a number"),
        ({"score": [1]}, "score", "a number"),
        ({"comment": "no grade given"}, "score", "a score, a label or both"),
        ({"label": "good", "comment": 5}, "comment", "string"),
        ({"label": "good", "comment": "nul\u0000"}, "comment", "Null characters"),
    ],
)
def test_a_bad_annotation_is_400_naming_the_field(api, reviewed, body, field, says):
    dataset, run, results = reviewed

    response = api.post(annotations_url(dataset, run, results[0]), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert says.lower() in response.json()["errors"][field][0].lower()
    assert field in response.json()["message"]
    assert not Annotation.objects.exists()


def test_results_carry_their_annotations(api, bob, reviewed):
    dataset, run, results = reviewed
    alices = api.post(annotations_url(dataset, run, results[1]), {"score": 0.5}, format="json").json()
    bobs = bob.post(annotations_url(dataset, run, results[1]), {"label": "unsure"}, format="json").json()

    listed = api.get(f"/api/datasets/{dataset.pk}/runs/{run.pk}/results").json()["results"]

    by_id = {r["id"]: r for r in listed}
    assert by_id[str(results[1].pk)]["annotations"] == [alices, bobs]
    assert by_id[str(results[0].pk)]["annotations"] == []
    assert "scores" in by_id[str(results[0].pk)]


def test_a_page_of_annotated_results_takes_as_many_queries_as_a_short_one(api, bob, team, make_dataset, user):
    dataset = make_dataset("Many", project=team, items=[{"input": n, "expectedOutput": n} for n in range(50)])
    run, results = finished_run(dataset)
    bob_user = dataset.project.memberships.get(user__username="bob").user
    for result in results:
        annotations.annotation_save(result=result, dataset=dataset, author=user, score=1.0)
        annotations.annotation_save(result=result, dataset=dataset, author=bob_user, label="good")
    url = f"/api/datasets/{dataset.pk}/runs/{run.pk}/results"

    with CaptureQueriesContext(connection) as short:
        assert len(api.get(url, {"perPage": 2}).json()["results"]) == 2
    with CaptureQueriesContext(connection) as full:
        page = api.get(url, {"perPage": 50}).json()["results"]

    assert len(page) == 50 and all(len(r["annotations"]) == 2 for r in page)
    assert len(full) == len(short) <= 10, [q["sql"] for q in full.captured_queries]


def test_the_run_summary_gives_each_annotation_name_its_mean_count_and_labels(api, bob, reviewed):
    dataset, run, results = reviewed
    url = lambda n: annotations_url(dataset, run, results[n])  # noqa: E731
    api.post(url(0), {"score": 1, "label": "good"}, format="json")
    api.post(url(1), {"score": 0, "label": "bad"}, format="json")
    bob.post(url(1), {"label": "bad"}, format="json")
    bob.post(url(2), {"score": 0.5}, format="json")
    expected = {"human": {"mean": 0.5, "count": 4, "labels": {"bad": 2, "good": 1}}}

    detail = api.get(f"/api/datasets/{dataset.pk}/runs/{run.pk}").json()
    listed = api.get(f"/api/datasets/{dataset.pk}/runs").json()["runs"]

    assert detail["summary"]["annotations"] == expected
    assert [r["summary"]["annotations"] for r in listed] == [expected]
    assert list(detail["summary"]["annotations"]["human"]["labels"]) == ["bad", "good"]  # most given first


def test_the_runs_list_reads_the_annotation_figures_of_a_page_at_once(api, reviewed, user):
    dataset, _, results = reviewed
    annotations.annotation_save(result=results[0], dataset=dataset, author=user, score=0.25)
    url = f"/api/datasets/{dataset.pk}/runs"

    with CaptureQueriesContext(connection) as one:
        api.get(url)
    _, second_results = finished_run(dataset)
    finished_run(dataset)
    annotations.annotation_save(result=second_results[2], dataset=dataset, author=user, label="bad")
    with CaptureQueriesContext(connection) as three:
        runs = api.get(url).json()["runs"]

    assert len(three) == len(one)
    assert [r["summary"]["annotations"] for r in runs] == [
        {},
        {"human": {"mean": None, "count": 1, "labels": {"bad": 1}}},
        {"human": {"mean": 0.25, "count": 1, "labels": {}}},
    ]


def test_annotation_names_and_labels_are_set_on_the_dataset(api, reviewed):
    dataset, run, results = reviewed
    config = [{"name": "correct", "labels": ["yes", "no"]}, {"name": "tone", "labels": []}]

    patched = api.patch(f"/api/datasets/{dataset.pk}", {"annotationConfig": config}, format="json")

    assert patched.status_code == 200 and patched.json()["annotationConfig"] == config
    url = annotations_url(dataset, run, results[0])
    default_name = api.post(url, {"label": "yes"}, format="json").json()
    tone = api.post(url, {"name": "tone", "score": 0.9}, format="json").json()
    assert (default_name["name"], tone["name"]) == ("correct", "tone")
    refused = api.post(url, {"name": "human", "label": "good"}, format="json")
    assert "correct, tone" in refused.json()["errors"]["name"][0]
    assert api.post(url, {"name": "tone", "label": "rude"}, format="json").status_code == 400  # no labels for tone

    created = api.post("/api/datasets", {"name": "Graded", "annotationConfig": config[:1]}, format="json")
    assert created.status_code == 201 and created.json()["annotationConfig"] == config[:1]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ([], "annotationConfig"),
        ("human", "annotationConfig"),
        ([{"name": ""}], "annotationConfig/0/name"),
        ([{"name": "a"}, {"name": "a"}], "annotationConfig/1/name"),
        ([{"name": "a", "labels": "good"}], "annotationConfig/0/labels"),
        ([{"name": "a", "labels": ["nul\u0000"]}], "annotationConfig/0/labels"),
        ([{"name": "a", "colour": "red"}], "annotationConfig/0"),
        (None, "annotationConfig"),
    ],
)
def test_a_bad_annotation_config_is_400_naming_the_entry(api, reviewed, config, field):
    dataset, _, _ = reviewed

    response = api.patch(f"/api/datasets/{dataset.pk}", {"annotationConfig": config}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert Dataset.objects.get(pk=dataset.pk).annotation_config == services.default_annotation_config()
