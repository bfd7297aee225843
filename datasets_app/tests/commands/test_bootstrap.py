"""First start: an admin account to log in with, and a demo dataset to run."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from datasets_app.management.commands import bootstrap
from datasets_app.models import Dataset


@pytest.fixture
def password_file(tmp_path, monkeypatch):
    path = tmp_path / ".admin-password"
    monkeypatch.setattr(bootstrap, "PASSWORD_FILE", path)
    return path


def run_bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_first_start_creates_a_working_admin_login_and_demo_data(password_file, client, monkeypatch):
    monkeypatch.delenv("PLAYGROUND_ADMIN_PASSWORD", raising=False)
    out = run_bootstrap()

    password = password_file.read_text().strip()
    assert f"user 'admin', password {password}" in out
    assert client.login(username="admin", password=password)
    demo = Dataset.objects.get()
    assert demo.item_count == len(bootstrap.DEMO_ITEMS) and demo.version == 1

    again = run_bootstrap()
    assert str(password_file) in again
    assert get_user_model().objects.count() == 1 and Dataset.objects.count() == 1


@pytest.mark.django_db
def test_the_password_can_come_from_the_environment(password_file, client, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_ADMIN_PASSWORD", "chosen by me")
    out = run_bootstrap()
    assert "chosen by me" not in out
    assert not password_file.exists()
    assert client.login(username="admin", password="chosen by me")
