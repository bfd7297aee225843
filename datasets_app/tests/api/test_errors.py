"""What every client can send wrong: no login, bad ids, bad bodies, huge bodies."""

import uuid

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from datasets_app.tests.factories import add_result, make_run

pytestmark = pytest.mark.django_db

NOBODY = uuid.uuid4()
# Every endpoint, with {d} {i} {r} standing for a dataset, item and run id.
ENDPOINTS = [
    ("get", "/api/datasets"),
    ("post", "/api/datasets"),
    ("get", "/api/datasets/{d}"),
    ("patch", "/api/datasets/{d}"),
    ("delete", "/api/datasets/{d}"),
    ("get", "/api/datasets/{d}/versions"),
    ("get", "/api/datasets/{d}/items"),
    ("post", "/api/datasets/{d}/items"),
    ("post", "/api/datasets/{d}/items/bulk"),
    ("delete", "/api/datasets/{d}/items/bulk"),
    ("get", "/api/datasets/{d}/items/{i}"),
    ("patch", "/api/datasets/{d}/items/{i}"),
    ("delete", "/api/datasets/{d}/items/{i}"),
    ("get", "/api/datasets/{d}/items/{i}/versions"),
    ("get", "/api/datasets/{d}/runs"),
    ("post", "/api/datasets/{d}/runs"),
    ("get", "/api/datasets/{d}/runs/{r}"),
    ("post", "/api/datasets/{d}/runs/{r}/cancel"),
    ("post", "/api/datasets/{d}/runs/{r}/rerun-failed"),
    ("get", "/api/datasets/{d}/runs/{r}/results"),
    ("post", "/api/datasets/{d}/compare"),
    ("get", "/api/targets"),
    ("get", "/api/scorers"),
    ("get", "/api/traces/{t}"),
]


@pytest.mark.parametrize("method, template", ENDPOINTS)
def test_anonymous_gets_a_json_401_not_a_login_redirect(method, template, capitals):
    run = make_run(capitals)
    result = add_result(run, capitals.items.first(), trace_id="d" * 32)
    path = template.format(d=capitals.id, i=result.item_id, r=run.id, t=result.trace_id)

    response = getattr(APIClient(), method)(path, {}, format="json")

    assert response.status_code == 401
    assert response.json()["message"]
    assert capitals.items.live().count() == 3
    run.refresh_from_db()
    assert run.status == "running"


def test_anonymous_cannot_read_the_schema():
    assert APIClient().get("/api/schema/").status_code == 401


def test_docs_page_sends_anonymous_browsers_to_the_login_page(client):
    response = client.get("/api/docs/")

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_anonymous_gets_401_with_a_token_challenge():
    response = APIClient().get("/api/datasets")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_token_authentication(user, capitals):
    token = Token.objects.create(user=user).key

    assert APIClient().get("/api/datasets", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert APIClient().get("/api/datasets", HTTP_AUTHORIZATION="Token wrong").status_code == 401


@pytest.mark.parametrize("method, template", [e for e in ENDPOINTS if "{" in e[1]])
def test_unknown_ids_are_404_with_the_error_shape(api, method, template):
    path = template.format(d=NOBODY, i=NOBODY, r=NOBODY, t="a" * 32)

    response = getattr(api, method)(path, {}, format="json")

    assert response.status_code == 404, response.content
    assert response.json() == {"message": "Not found."}


@pytest.mark.parametrize(
    "path",
    [
        "/api/datasets/not-a-uuid",
        "/api/datasets/123/items",
        "/api/nothing-here",
        "/api/datasets/",
        "/api/",
        "/api/traces/not-hex",
        "/api/traces/%00",
    ],
)
def test_malformed_paths_are_json_404(api, path):
    response = api.get(path)

    assert response.status_code == 404
    assert response.json()["message"]


def test_unsupported_method_is_405(api, capitals):
    response = api.put(f"/api/datasets/{capitals.id}", {"name": "x"}, format="json")

    assert response.status_code == 405
    assert response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "x",',
        "not json",
        '{"name": NaN}',
        '{"name":"x","metadata":1e999}',
        '{"name":"x","metadata":"\\ud800"}',
        '{"name":"x","metadata":' + "1" * 5000 + "}",
        '{"name":"x","metadata":' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
)
def test_malformed_json_is_400(api, body):
    response = api.post("/api/datasets", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["message"]


def test_invalid_utf8_is_400(api):
    response = api.post("/api/datasets", b'{"name": "\xff"}', content_type="application/json")

    assert response.status_code == 400


def test_non_json_content_type_is_415(api):
    response = api.post("/api/datasets", "name=x", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["message"]


def test_body_over_the_limit_is_413(api, capitals, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"input": "' + "x" * 2000 + '"}'

    response = api.post(f"/api/datasets/{capitals.id}/items", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["message"]
    assert capitals.items.count() == 3


def test_body_within_the_limit_is_accepted(api, capitals, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = api.post(f"/api/datasets/{capitals.id}/items", {"input": "x" * 500}, format="json")

    assert response.status_code == 201


def test_wrong_types_are_400_keyed_by_camel_case_field(api, capitals):
    response = api.post(
        f"/api/datasets/{capitals.id}/runs",
        {"targetType": "workflow", "targetId": "echo", "maxRetries": "lots", "scorerIds": "exact-match"},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"maxRetries", "scorerIds"}


def test_body_that_is_not_an_object_is_400(api):
    response = api.post("/api/datasets", [1, 2], format="json")

    assert response.status_code == 400
    assert response.json()["message"]


def test_huge_numbers_in_options_are_400_not_500(api, capitals):
    response = api.post(
        f"/api/datasets/{capitals.id}/runs",
        {"targetType": "workflow", "targetId": "echo", "maxConcurrency": 10**20, "maxRetries": 10**20},
        format="json",
    )

    assert response.status_code == 400
