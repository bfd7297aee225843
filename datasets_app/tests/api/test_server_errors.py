"""Requests that once answered 500 (found by test_schemathesis.py and by hand),
each pinned to the 4xx it answers now. Where only PostgreSQL failed, the test
runs on both databases and again, marked `postgres`, in the PostgreSQL pass."""

import pytest

from datasets_app import projects

pytestmark = pytest.mark.django_db


def remove_member_named_with_a_nul(api, user):
    shared = projects.project_create(user=user, name="Shared")

    response = api.delete(f"/api/projects/{shared.pk}/members/bo%00b")

    assert response.status_code == 400
    assert response.json()["errors"] == {"username": ["Null characters are not allowed."]}


def test_a_username_with_a_nul_in_the_path_is_refused(api, user):
    """PostgreSQL refuses a NUL in any text it is sent: the lookup raised DataError (500)."""
    remove_member_named_with_a_nul(api, user)


@pytest.mark.postgres
def test_a_username_with_a_nul_in_the_path_is_refused_on_postgresql(api, user):
    remove_member_named_with_a_nul(api, user)


def test_a_username_in_the_path_is_not_trimmed(api, user, django_user_model):
    django_user_model.objects.create_user(username="bob", password="bob's password")
    shared = projects.project_create(user=user, name="Shared")
    projects.member_set(project=shared, username="bob", role="viewer")

    assert api.delete(f"/api/projects/{shared.pk}/members/%20bob").status_code == 400
    assert api.delete(f"/api/projects/{shared.pk}/members/bob").status_code == 200
