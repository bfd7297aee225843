"""Forms that take JSON text (item add and edit, dataset edit, admin): JSON that
cannot be stored is a field error on a page, never a 500 and never stored."""

import pytest
from django.urls import reverse

from datasets_app.models import Dataset

pytestmark = pytest.mark.django_db

DEEP = "[" * 10_000 + "]" * 10_000
UNSTORABLE = [
    ("NaN", "This value is not valid JSON: NaN"),
    ('{"score": 1e999}', "This value is not valid JSON: Infinity"),
    ('"\\ud800"', "This value is not valid JSON: lone surrogate \\ud800"),
    (DEEP, "This value is nested deeper than 64 levels"),
]


@pytest.mark.parametrize(("text", "error"), UNSTORABLE)
def test_add_item_form(browser_client, capitals, text, error):
    response = browser_client.post(reverse("item-create", args=[capitals.id]), {"input": "1", "context": text})

    html = response.content.decode()
    assert response.status_code == 400
    assert f'<ul class="errorlist" id="id_context_error"><li>{error}</li>' in html
    assert capitals.items.count() == 3


@pytest.mark.parametrize(("text", "error"), UNSTORABLE)
def test_edit_item_form(browser_client, capitals, text, error):
    item = capitals.items.first()
    response = browser_client.post(
        reverse("item-edit", args=[capitals.id, item.id]), {"input": text}, HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert response.status_code == 200 and 'class="editing"' in html  # htmx swaps only 2xx answers
    assert error in html
    item.refresh_from_db()
    assert item.version == 1


def test_dataset_form_refuses_a_pattern_re2_cannot_run(browser_client, capitals):
    response = browser_client.post(
        reverse("dataset-edit", args=[capitals.id]), {"name": "Capitals", "input_schema": '{"pattern": "(a)\\\\1"}'}
    )

    html = response.content.decode()
    assert response.status_code == 200  # the edit page shows the form again with its errors
    assert 'id="id_input_schema_error"' in html
    assert "uses a feature RE2 does not support (backreferences/lookaround)" in html
    capitals.refresh_from_db()
    assert capitals.input_schema is None


def admin_post(admin_client, dataset, **fields):
    data = {
        "name": dataset.name,
        "description": "",
        "metadata": "",
        "input_schema": "",
        "output_schema": "",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        **fields,
    }
    return admin_client.post(reverse("admin:datasets_app_dataset_change", args=[dataset.id]), data)


@pytest.mark.parametrize(("text", "error"), UNSTORABLE)
def test_admin_dataset_form_refuses_unstorable_json(admin_client, make_dataset, text, error):
    dataset = make_dataset(name="Plain", metadata={"keep": True})

    response = admin_post(admin_client, dataset, metadata=text)

    assert response.status_code == 200  # the admin shows the form again with its errors
    assert error in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.metadata == {"keep": True}


def test_admin_dataset_form_checks_schemas(admin_client, make_dataset):
    dataset = make_dataset(name="Plain")

    response = admin_post(admin_client, dataset, output_schema='{"pattern": "^(?=x)"}', input_schema="0")

    html = response.content.decode()
    assert response.status_code == 200
    assert "uses a feature RE2 does not support (backreferences/lookaround)" in html
    assert "must be a JSON Schema (an object or a boolean)" in html
    dataset.refresh_from_db()
    assert dataset.input_schema is None and dataset.output_schema is None


def test_admin_saves_json_strings_as_strings(admin_client, api, make_dataset):
    dataset = make_dataset(name="Plain")

    response = admin_post(admin_client, dataset, metadata='"NaN"', input_schema='{"type": "object"}')

    assert response.status_code == 302
    dataset = Dataset.objects.get(pk=dataset.pk)
    assert dataset.metadata == "NaN" and dataset.input_schema == {"type": "object"}
    assert api.get(f"/api/datasets/{dataset.id}").json()["metadata"] == "NaN"
