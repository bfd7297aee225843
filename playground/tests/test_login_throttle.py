"""Throttles: django-axes locks a username on one address out after five wrong
passwords (429 page); DRF answers an API client over its rate with a JSON 429.

The test run turns django-axes off (playground/settings_test.py); these tests
turn it back on, as every server has it."""

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.throttling import SimpleRateThrottle

PASSWORD = "correct horse battery"  # the `user` fixture's (alice)

pytestmark = pytest.mark.django_db


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    yield
    AccessAttempt.objects.all().delete()


def log_in(client: Client, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_five_wrong_passwords_lock_out_that_username_from_that_address(axes_on, user, django_user_model):
    django_user_model.objects.create_user(username="bob", password=PASSWORD)
    attacker = Client()

    for attempt in range(4):
        response = log_in(attacker, "alice", f"guess {attempt}")
        assert response.status_code == 200  # the form again, with its error
        assert "Please enter a correct username and password" in response.content.decode()
    fifth = log_in(attacker, "alice", "guess 4")
    assert fifth.status_code == 429

    locked = log_in(attacker, "alice", PASSWORD)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "<strong>alice</strong>" in page and "15 minutes" in page
    assert "registration/locked_out.html" in [t.name for t in locked.templates]
    assert "_auth_user_id" not in attacker.session

    # Another username from the same address, and alice from another address, still log in.
    same_address = Client()
    assert log_in(same_address, "bob", PASSWORD).status_code == 302
    elsewhere = Client(REMOTE_ADDR="203.0.113.7")
    response = log_in(elsewhere, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("datasets")


def test_a_successful_login_clears_earlier_failures(axes_on, user):
    client = Client()
    for attempt in range(4):
        assert log_in(client, "alice", f"guess {attempt}").status_code == 200
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert log_in(Client(), "alice", "one more guess").status_code == 200  # a fresh count, not a lockout


def test_the_api_answers_429_in_its_error_shape_over_the_rate(api, monkeypatch):
    """Rates come from settings (PLAYGROUND_API_RATE; the test run sets them out of
    reach); here the user rate is 3 a minute, counted in the default cache."""
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "3/min")
    cache.clear()
    try:
        for _ in range(3):
            assert api.get("/api/targets").status_code == 200
        response = api.get("/api/targets")
    finally:
        cache.clear()
    assert response.status_code == 429
    body = response.json()
    assert body["message"].startswith("Request was throttled.") and "available in" in body["message"]
    assert 0 < int(response["Retry-After"]) <= 60
