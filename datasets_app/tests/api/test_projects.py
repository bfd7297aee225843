"""Projects, members and roles through the API (docs/api.md, "Projects and access")."""

from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from datasets_app import projects
from datasets_app.models import Dataset, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user(username="bob", password="pw-bob-1234")


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_a_new_user_has_a_personal_project_they_own(api, user):
    body = api.get("/api/projects").json()
    assert [(p["name"], p["role"]) for p in body["projects"]] == [("alice's project", "owner")]
    assert body["pagination"]["total"] == 1


def test_a_dataset_lands_in_the_personal_project_unless_told_otherwise(api, user):
    personal = api.get("/api/projects").json()["projects"][0]["id"]
    team = api.post("/api/projects", {"name": "Team"}, format="json").json()
    assert team["role"] == "owner"

    first = api.post("/api/datasets", {"name": "Mine"}, format="json").json()
    second = api.post("/api/datasets", {"name": "Ours", "projectId": team["id"]}, format="json").json()
    assert (first["projectId"], second["projectId"]) == (personal, team["id"])

    assert [d["name"] for d in api.get(f"/api/datasets?projectId={team['id']}").json()["datasets"]] == ["Ours"]
    assert {d["name"] for d in api.get("/api/datasets").json()["datasets"]} == {"Mine", "Ours"}


def test_creating_in_someone_elses_project_is_not_found_and_as_viewer_forbidden(api, bob):
    theirs = projects.project_create(user=bob, name="Bob's team")
    response = api.post("/api/datasets", {"name": "Sneaky", "projectId": str(theirs.pk)}, format="json")
    assert response.status_code == 404
    projects.member_set(project=theirs, username="alice", role="viewer")
    response = api.post("/api/datasets", {"name": "Sneaky", "projectId": str(theirs.pk)}, format="json")
    assert response.status_code == 403
    assert not Dataset.objects.filter(name="Sneaky").exists()


def test_owners_manage_members_and_a_project_keeps_an_owner(api, user, bob):
    team = api.post("/api/projects", {"name": "Team"}, format="json").json()
    members = f"/api/projects/{team['id']}/members"

    answer = api.post(members, {"username": "bob", "role": "editor"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["members"] == [{"username": "alice", "role": "owner"}, {"username": "bob", "role": "editor"}]
    assert client_for(bob).get(f"/api/projects/{team['id']}").json()["role"] == "editor"

    assert api.post(members, {"username": "nobody", "role": "editor"}, format="json").status_code == 400
    bad_role = api.post(members, {"username": "bob", "role": "admin"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["errors"]

    # The last owner can neither leave nor step down.
    assert api.delete(f"{members}/alice").status_code == 409
    assert api.post(members, {"username": "alice", "role": "viewer"}, format="json").status_code == 409

    assert api.delete(f"{members}/bob").json() == {"success": True}
    assert client_for(bob).get(f"/api/projects/{team['id']}").status_code == 404


def test_owners_rename_and_delete_but_a_personal_project_stays(api, user, bob):
    team = api.post("/api/projects", {"name": "Team"}, format="json").json()
    api.post("/api/datasets", {"name": "Gone with it", "projectId": team["id"]}, format="json")
    projects.member_set(project=Project.objects.get(pk=team["id"]), username="bob", role="editor")

    assert client_for(bob).patch(f"/api/projects/{team['id']}", {"name": "Mine now"}, format="json").status_code == 403
    assert client_for(bob).delete(f"/api/projects/{team['id']}").status_code == 403
    assert api.patch(f"/api/projects/{team['id']}", {"name": "Renamed"}, format="json").json()["name"] == "Renamed"

    assert api.delete(f"/api/projects/{team['id']}").json() == {"success": True}
    assert not Dataset.objects.filter(name="Gone with it").exists()

    personal = api.get("/api/projects").json()["projects"][0]
    assert api.delete(f"/api/projects/{personal['id']}").status_code == 409


def test_a_project_body_is_checked(api):
    assert api.post("/api/projects", {"name": ""}, format="json").status_code == 400
    assert api.post("/api/projects", {"name": 5.5, "x": 1}, format="json").status_code in (201, 400)
    assert api.post("/api/projects", ["not", "an", "object"], format="json").status_code == 400


def test_a_token_acts_as_its_user_and_a_revoked_one_answers_401(user, bob):
    out = StringIO()
    call_command("api_token", "create", "bob", stdout=out)
    key = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert [p["name"] for p in client.get("/api/projects").json()["projects"]] == ["bob's project"]

    call_command("api_token", "revoke", "bob", stdout=StringIO())
    assert client.get("/api/projects").status_code == 401
