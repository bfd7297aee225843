"""GET /healthz: no login, counts only; 503 only when the database fails."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from datasets_app.models import DatasetRun, RunChunk
from datasets_app.tests.factories import WORKER, make_run

pytestmark = pytest.mark.django_db

URL = "/healthz"


def health(client) -> tuple[int, dict]:
    response = client.get(URL)
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, response.json()


def test_an_idle_site_is_ok_without_logging_in(client):
    status, body = health(client)
    assert status == 200
    assert body == {
        "status": "ok",
        "database": "ok",
        "workers": {"alive": 0, "lastSeenAt": None, "state": "ok"},
        "queue": {"pending": 0, "running": 0},
    }


def test_busy_workers_and_the_queue_are_counted(client, capitals):
    make_run(capitals)  # running: its chunk is leased by WORKER
    make_run(capitals, status=DatasetRun.Status.PENDING)
    other = make_run(capitals, status=DatasetRun.Status.PENDING)
    RunChunk.objects.filter(run=other).update(
        status=RunChunk.Status.RUNNING,
        lease_owner="host-b:42:x",
        lease_expires_at=timezone.now() + timedelta(seconds=3),
    )
    DatasetRun.objects.filter(pk=other.pk).update(status=DatasetRun.Status.RUNNING)

    status, body = health(client)

    assert status == 200 and body["status"] == "ok"
    assert body["queue"] == {"pending": 1, "running": 2}
    assert body["workers"]["alive"] == 2 and body["workers"]["state"] == "ok"
    newest_renewal = parse_datetime(body["workers"]["lastSeenAt"])
    assert newest_renewal is not None
    assert abs((timezone.now() - newest_renewal).total_seconds()) < 5


def test_runs_waiting_without_any_worker_degrade_the_answer_but_keep_it_200(client, capitals):
    waiting = make_run(capitals, status=DatasetRun.Status.PENDING)
    fresh = make_run(capitals, status=DatasetRun.Status.PENDING)
    DatasetRun.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(seconds=90))

    status, body = health(client)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["workers"] == {
        "alive": 0,
        "lastSeenAt": None,
        "state": "error: no worker has claimed work for 60 s while 1 run waits",
    }
    assert body["queue"] == {"pending": 2, "running": 0}

    # A run abandoned by a dead worker waits from the moment its lease ran out.
    DatasetRun.objects.filter(pk=fresh.pk).update(status=DatasetRun.Status.RUNNING)
    expired = timezone.now() - timedelta(seconds=120)
    RunChunk.objects.filter(run=fresh).update(
        status=RunChunk.Status.RUNNING, lease_owner=WORKER, lease_expires_at=expired
    )
    status, body = health(client)
    assert status == 200 and body["status"] == "degraded"
    assert body["workers"]["state"] == "error: no worker has claimed work for 60 s while 2 runs wait"
    last_seen = parse_datetime(body["workers"]["lastSeenAt"])
    assert last_seen is not None and last_seen < expired


def test_a_fresh_run_is_not_yet_a_worker_problem(client, capitals):
    make_run(capitals, status=DatasetRun.Status.PENDING)
    status, body = health(client)
    assert status == 200 and body["status"] == "ok" and body["workers"]["state"] == "ok"


def test_an_unreachable_database_answers_503_naming_it(client):
    refused = OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed: Connection refused')
    with mock.patch.object(connection, "cursor", side_effect=refused):
        response = client.get(URL)
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error: OperationalError"}
    assert b"db.internal" not in response.content  # the reason goes to the log, not to the caller


def test_it_is_answered_over_plain_http_when_the_site_redirects_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(URL).status_code == 200
    assert client.get("/accounts/login/").status_code == 301


def test_only_get_and_head(client):
    assert client.head(URL).status_code == 200
    assert client.post(URL).status_code == 405
