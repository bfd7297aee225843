"""The datasets list, dataset create/edit/duplicate/delete, login and navigation."""

import pytest
from django.urls import reverse

from datasets_app.models import Dataset, DatasetRun
from datasets_app.tests.factories import make_run

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_login(client, capitals):
    for url in (reverse("datasets"), capitals.get_absolute_url(), reverse("dataset-import", args=[capitals.id])):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_login_page_logs_in_and_lands_on_datasets(client, user):
    page = client.get(reverse("login"))
    assert b'<label for="id_username"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 302
    assert response["Location"] == reverse("datasets")


def test_wrong_password_says_so(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_nav_links_and_post_logout(browser_client):
    html = browser_client.get(reverse("datasets")).content.decode()
    assert 'href="/api/docs/"' in html
    assert f'href="{reverse("admin:index")}"' in html
    assert "alice" in html
    assert f'<form method="post" action="{reverse("logout")}">' in html
    assert "csrfmiddlewaretoken" in html
    assert "css/app.css" in html and "css/runs.css" in html
    assert "htmx" in html


def test_list_shows_datasets_with_counts_and_last_run(browser_client, capitals, make_dataset):
    make_dataset(name="Empty one", description="Nothing here yet")
    make_run(capitals, status=DatasetRun.Status.COMPLETED)
    html = browser_client.get(reverse("datasets")).content.decode()
    assert "Capitals" in html and "Empty one" in html and "Nothing here yet" in html
    assert '<td class="num">3</td>' in html
    assert 'class="badge badge-completed"' in html
    assert "never" in html  # the dataset without runs


def test_search_filters_the_list(browser_client, make_dataset):
    make_dataset(name="Capitals")
    make_dataset(name="Math questions")
    html = browser_client.get(reverse("datasets"), {"q": "math"}).content.decode()
    assert "Math questions" in html
    assert ">Capitals<" not in html
    html = browser_client.get(reverse("datasets"), {"q": "zebra"}).content.decode()
    assert "No dataset matches “zebra”" in html


def test_empty_state_says_what_to_do(browser_client):
    html = browser_client.get(reverse("datasets")).content.decode()
    assert "No datasets yet" in html
    assert "Create one below" in html


def test_list_is_paginated(browser_client, make_dataset):
    for n in range(23):
        make_dataset(name=f"Set {n:02}")
    first = browser_client.get(reverse("datasets")).content.decode()
    assert "Page 1 of 2" in first
    second = browser_client.get(reverse("datasets"), {"page": 2}).content.decode()
    assert "Set 00" in second and "Set 22" not in second


def test_create_dataset_redirects_to_it(browser_client):
    response = browser_client.post(
        reverse("dataset-create"),
        {"name": "QA", "description": "questions", "input_schema": '{"type": "object"}', "output_schema": ""},
    )
    dataset = Dataset.objects.get(name="QA")
    assert response.status_code == 302 and response["Location"] == dataset.get_absolute_url()
    assert dataset.input_schema == {"type": "object"} and dataset.output_schema is None


def test_create_with_blank_name_shows_error_next_to_name(browser_client):
    response = browser_client.post(reverse("dataset-create"), {"name": "   ", "description": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_name_error"' in html and "This field is required." in html
    assert not Dataset.objects.exists()


def test_create_with_invalid_schema_shows_error_next_to_schema(browser_client):
    response = browser_client.post(reverse("dataset-create"), {"name": "QA", "input_schema": '{"type": "banana"}'})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_input_schema_error"' in html
    assert "is not valid under any of the given schemas" in html
    assert not Dataset.objects.exists()


def test_create_with_schema_that_is_not_json(browser_client):
    response = browser_client.post(reverse("dataset-create"), {"name": "QA", "output_schema": "{type: object}"})
    html = response.content.decode()
    assert 'id="id_output_schema_error"' in html and "Not valid JSON" in html
    assert not Dataset.objects.exists()


def test_edit_dataset(browser_client, capitals):
    url = reverse("dataset-edit", args=[capitals.id])
    assert "Capitals" in browser_client.get(url).content.decode()
    response = browser_client.post(
        url, {"name": "World capitals", "description": "v2", "input_schema": "", "output_schema": ""}
    )
    assert response.status_code == 302
    capitals.refresh_from_db()
    assert capitals.name == "World capitals" and capitals.description == "v2"


def test_duplicate_copies_the_items(browser_client, capitals):
    response = browser_client.post(reverse("dataset-duplicate", args=[capitals.id]))
    copy = Dataset.objects.get(name="Capitals (copy)")
    assert response["Location"] == copy.get_absolute_url()
    assert copy.item_count == 3
    assert "Duplicated" in browser_client.get(copy.get_absolute_url()).content.decode()


def test_delete_asks_for_confirmation_first(browser_client, capitals):
    url = reverse("dataset-delete", args=[capitals.id])
    html = browser_client.get(url).content.decode()
    assert "Delete “Capitals”?" in html and "3 items" in html
    assert Dataset.objects.filter(pk=capitals.pk).exists()
    response = browser_client.post(url)
    assert response["Location"] == reverse("datasets")
    assert not Dataset.objects.filter(pk=capitals.pk).exists()
    assert "Deleted dataset “Capitals”" in browser_client.get(reverse("datasets")).content.decode()


def test_unknown_dataset_is_404(browser_client):
    assert browser_client.get("/datasets/00000000-0000-0000-0000-000000000000/").status_code == 404
