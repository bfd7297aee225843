"""The project switcher, project settings, the profile's API token, and the
run-start budget, as a user meets them in the pages."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from datasets_app import projects, services
from datasets_app.api.throttles import RunStartThrottle
from datasets_app.models import DatasetRun, ProjectMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw-bob-1234")


def test_the_datasets_list_shows_the_current_projects_datasets_and_the_switcher_changes_it(
    browser_client, user, make_dataset
):
    make_dataset("Personal notes")
    team = projects.project_create(user=user, name="Team")
    make_dataset("Team benchmark", project=team)

    page = browser_client.get(reverse("datasets")).content.decode()
    assert "Personal notes" in page and "Team benchmark" not in page
    assert "Team (owner)" in page and "alice&#x27;s project (owner)" in page

    response = browser_client.post(reverse("project-switch"), {"project": str(team.pk)})
    assert response.status_code == 302
    page = browser_client.get(reverse("datasets")).content.decode()
    assert "Team benchmark" in page and "Personal notes" not in page


def test_switching_to_a_project_you_are_not_in_is_not_found(browser_client, bob):
    theirs = projects.project_create(user=bob, name="Bob's")
    assert browser_client.post(reverse("project-switch"), {"project": str(theirs.pk)}).status_code == 404
    assert browser_client.post(reverse("project-switch"), {"project": "not-a-uuid"}).status_code == 404


def test_a_new_dataset_lands_in_the_current_project_and_a_viewer_cannot_make_one(browser_client, user, bob):
    theirs = projects.project_create(user=bob, name="Bob's")
    projects.member_set(project=theirs, username="alice", role="viewer")
    browser_client.post(reverse("project-switch"), {"project": str(theirs.pk)})
    response = browser_client.post(reverse("dataset-create"), {"name": "Not allowed"})
    assert response.status_code == 403
    assert not theirs.datasets.exists()

    projects.member_set(project=theirs, username="alice", role="editor")
    response = browser_client.post(reverse("dataset-create"), {"name": "Allowed"})
    assert response.status_code == 302
    assert list(theirs.datasets.values_list("name", flat=True)) == ["Allowed"]


def test_owners_manage_members_on_the_project_page(browser_client, user, bob):
    team = projects.project_create(user=user, name="Team")
    browser_client.post(reverse("project-switch"), {"project": str(team.pk)})
    settings_url = reverse("project-settings")

    browser_client.post(settings_url, {"action": "set-member", "username": "bob", "role": "viewer"})
    assert ProjectMembership.objects.get(project=team, user=bob).role == "viewer"
    page = browser_client.get(settings_url).content.decode()
    assert "bob" in page and "Remove" in page

    answer = browser_client.post(
        settings_url, {"action": "set-member", "username": "nobody", "role": "viewer"}, follow=True
    )
    assert "No user named &#x27;nobody&#x27;" in answer.content.decode()

    browser_client.post(settings_url, {"action": "remove-member", "username": "bob"})
    assert not ProjectMembership.objects.filter(project=team, user=bob).exists()


def test_a_non_owner_sees_members_but_cannot_change_them(client, user, bob):
    team = projects.project_create(user=user, name="Team")
    projects.member_set(project=team, username="bob", role="editor")
    client.force_login(bob)
    client.post(reverse("project-switch"), {"project": str(team.pk)})
    page = client.get(reverse("project-settings")).content.decode()
    assert "alice" in page and "Remove" not in page
    response = client.post(reverse("project-settings"), {"action": "set-member", "username": "bob", "role": "owner"})
    assert response.status_code == 403
    assert ProjectMembership.objects.get(project=team, user=bob).role == "editor"


def test_the_profile_makes_a_token_shown_once_and_revokes_it(browser_client, user):
    response = browser_client.post(reverse("profile"), {"action": "create-token"})
    key = Token.objects.get(user=user).key
    assert key in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert key not in browser_client.get(reverse("profile")).content.decode()

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/projects").status_code == 200

    browser_client.post(reverse("profile"), {"action": "revoke-token"})
    assert api.get("/api/projects").status_code == 401


def test_run_starts_have_a_per_user_budget_shared_by_pages_and_api(browser_client, api, capitals, monkeypatch):
    cache.clear()
    rates = {**RunStartThrottle.THROTTLE_RATES, "run_start": "3/min"}
    monkeypatch.setattr(RunStartThrottle, "THROTTLE_RATES", rates)
    body = {"targetType": "workflow", "targetId": "echo"}
    url = f"/api/datasets/{capitals.pk}/runs"
    assert [api.post(url, body, format="json").status_code for _ in range(2)] == [201, 201]
    form = {
        "target": "workflow:echo",
        "version": capitals.version,
        "max_concurrency": 5,
        "max_retries": 0,
        "repetitions": 1,
    }
    started = browser_client.post(reverse("run-start", args=[capitals.pk]), form)
    assert started.status_code == 302 and "/runs/" in started["Location"]
    page = browser_client.post(reverse("run-start", args=[capitals.pk]), form)
    assert page.status_code == 429 and "Too many run starts" in page.content.decode()
    refused = api.post(url, body, format="json")
    assert refused.status_code == 429
    assert "throttled" in refused.json()["message"].lower()
    assert int(refused["Retry-After"]) > 0
    assert api.get(url).status_code == 200  # reading runs is not starting one
    assert DatasetRun.objects.filter(dataset=capitals).count() == 3
    cache.clear()


def test_dataset_list_of_another_users_personal_project_is_not_reachable(browser_client, bob):
    services.dataset_create(project=projects.personal_project(bob), name="Bob's secret")
    assert "Bob&#x27;s secret" not in browser_client.get(reverse("datasets")).content.decode()
