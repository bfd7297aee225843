"""Every route, called by someone outside the project, finds nothing; called by a
viewer, changes nothing.

The walk reads the URL configuration itself, so a new page, fragment or API
endpoint is walked the day it is added: one that forgets to scope its
objects answers 200 here and fails, and one with a path parameter the walk
does not know fails until `OBJECT_PARAMS` learns it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from datasets_app import annotations, projects, services
from datasets_app.models import Annotation, Dataset, DatasetItem, DatasetRun, ProjectMembership, ProjectRole
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db

# Routes that hold no project data, or are Django's own (admin: staff only, tested below).
NOT_PROJECT_DATA = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "api-schema",
    "api-docs",
    "api-unknown",
    "api-targets",
    "api-scorers",
    "healthz",
}
METHODS = ("get", "post", "patch", "put", "delete")


@dataclass
class Route:
    name: str
    params: list[str]
    is_api: bool


def walk(patterns: list[Any], prefix: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            namespace = getattr(entry, "namespace", None)
            if namespace == "admin":
                continue
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            route = prefix + str(entry.pattern)
            yield Route(entry.name, list(entry.pattern.regex.groupindex), route.startswith("api/"))


@pytest.fixture
def world(django_user_model):
    """Alice's project with a dataset, an item, a finished run with a traced
    result that Alice annotated; Mallory outside it; Victor a viewer in it."""
    alice = django_user_model.objects.create_user(username="alice", password="pw-alice-123")
    mallory = django_user_model.objects.create_user(username="mallory", password="pw-mallory-123")
    victor = django_user_model.objects.create_user(username="victor", password="pw-victor-123")
    project = projects.project_create(user=alice, name="Alice's team")
    projects.member_set(project=project, username="victor", role="viewer")
    dataset = services.dataset_create(project=project, name="Secret plans")
    item = services.item_create(dataset=dataset, input={"question": "launch code?"}, expected_output="0000")
    run = make_run(dataset)
    result = add_result(run, item, trace_id="ab" * 16)
    end_run(run, DatasetRun.Status.COMPLETED)
    annotation, _ = annotations.annotation_save(result=result, dataset=dataset, author=alice, label="good")
    return {
        "alice": alice,
        "mallory": mallory,
        "victor": victor,
        "project": project,
        "dataset": dataset,
        "item": item,
        "run": run,
        "result": result,
        "annotation": annotation,
    }


def object_params(world: dict[str, Any]) -> dict[str, Any]:
    """A value for every path parameter a route can take, all pointing into Alice's project."""
    return {
        "dataset_id": world["dataset"].pk,
        "datasetId": world["dataset"].pk,
        "item_id": world["item"].pk,
        "itemId": world["item"].pk,
        "run_id": world["run"].pk,
        "runId": world["run"].pk,
        "result_id": world["result"].pk,
        "resultId": world["result"].pk,
        "annotation_id": world["annotation"].pk,
        "annotationId": world["annotation"].pk,
        "trace_id": "ab" * 16,
        "traceId": "ab" * 16,
        "projectId": world["project"].pk,
        "username": "alice",
        "fmt": "csv",
    }


def call(client: Any, route: Route, method: str, kwargs: dict[str, Any]) -> Any:
    url = reverse(route.name, kwargs=kwargs)
    if route.is_api:
        return getattr(client, method)(url, {}, format="json")
    return getattr(client, method)(url, {"action": "delete", "confirmed": "yes", "name": "x"})


def snapshot(world: dict[str, Any]) -> tuple[Any, ...]:
    dataset = Dataset.objects.get(pk=world["dataset"].pk)
    run = DatasetRun.objects.get(pk=world["run"].pk)
    return (
        dataset.name,
        dataset.version,
        dataset.item_count,
        DatasetItem.objects.filter(dataset=dataset, is_deleted=False).count(),
        run.status,
        dataset.runs.count(),
        sorted(Annotation.objects.filter(run=run).values_list("name", "score", "label", "comment")),
        sorted(ProjectMembership.objects.filter(project=world["project"]).values_list("user__username", "role")),
    )


def clients_for(user: Any) -> tuple[Any, Any]:
    api = APIClient()
    api.force_login(user)
    pages = APIClient()
    pages.force_login(user)
    return api, pages


def test_every_route_with_an_object_answers_404_to_a_non_member(world, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    params = object_params(world)
    before = snapshot(world)
    api, pages = clients_for(world["mallory"])
    walked, leaks = 0, []
    for route in walk(get_resolver().url_patterns):
        if route.name in NOT_PROJECT_DATA or not route.params:
            continue
        unknown = [p for p in route.params if p not in params]
        assert not unknown, f"{route.name}: teach the walk the path parameters {unknown}"
        kwargs = {p: params[p] for p in route.params}
        for method in METHODS:
            response = call(api if route.is_api else pages, route, method, kwargs)
            walked += 1
            if response.status_code not in (404, 405):
                leaks.append(f"{method.upper()} {route.name}: {response.status_code}")
    assert leaks == []
    assert walked >= 25 * len(METHODS) - 40, walked  # the walk found the routes it should
    assert snapshot(world) == before


def test_lists_and_pages_without_ids_show_nothing_of_other_projects(world):
    api, pages = clients_for(world["mallory"])
    secret = world["dataset"]
    for route in walk(get_resolver().url_patterns):
        if route.name in NOT_PROJECT_DATA or route.params:
            continue
        response = (api if route.is_api else pages).get(reverse(route.name), follow=False)
        body = response.content.decode()
        assert secret.name not in body, route.name
        assert str(secret.pk) not in body, route.name
        assert str(world["project"].pk) not in body, route.name


def test_a_viewer_reads_everything_and_changes_nothing(world, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    params = object_params(world)
    before = snapshot(world)
    api, pages = clients_for(world["victor"])
    reads, refused, wrong = 0, 0, []
    for route in walk(get_resolver().url_patterns):
        if route.name in NOT_PROJECT_DATA or not route.params:
            continue
        kwargs = {p: params[p] for p in route.params}
        client = api if route.is_api else pages
        get = call(client, route, "get", kwargs)
        if get.status_code == 200:
            reads += 1
        for method in ("post", "patch", "put", "delete"):
            response = call(client, route, method, kwargs)
            if route.name in ("api-compare", "run-compare") and response.status_code in (200, 400):
                continue  # comparing is a read, though POSTed
            if response.status_code == 403:
                refused += 1
            elif response.status_code != 405:
                wrong.append(f"{method.upper()} {route.name}: {response.status_code}")
    assert wrong == []
    assert reads >= 15
    assert refused >= 15
    assert snapshot(world) == before


def test_a_viewers_write_names_the_role_it_needs(world):
    api, _ = clients_for(world["victor"])
    response = api.post(reverse("api-items", args=[world["dataset"].pk]), {"input": "x"}, format="json")
    assert response.status_code == 403
    assert "viewer" in response.json()["message"] and "editor" in response.json()["message"]


def test_an_editor_writes_but_does_not_manage_members(world):
    projects.member_set(project=world["project"], username="mallory", role=ProjectRole.EDITOR)
    api, _ = clients_for(world["mallory"])
    dataset = world["dataset"]
    assert api.post(reverse("api-items", args=[dataset.pk]), {"input": "x"}, format="json").status_code == 201
    members = reverse("api-project-members", args=[world["project"].pk])
    assert api.get(members).status_code == 200
    assert api.post(members, {"username": "mallory", "role": "owner"}, format="json").status_code == 403


def test_admin_is_for_staff_only(world, client):
    client.force_login(world["mallory"])
    response = client.get(reverse("admin:datasets_app_dataset_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
