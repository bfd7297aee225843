"""Shared fixtures: users, logged-in clients, dataset factories, a real worker."""

import pytest
from rest_framework.test import APIClient

from datasets_app import services
from datasets_app.models import DatasetRun
from datasets_app.runs.worker import Worker


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The default hasher costs about a second per user on these machines;
    tests check who may log in, not the hasher's strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="correct horse battery")


@pytest.fixture
def api(user):
    """An API client logged in through the session, as the browser would be."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def browser_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def make_dataset(db):
    def make(name="Capitals", items=None, **fields):
        dataset = services.dataset_create(name=name, **fields)
        if items:
            services.items_bulk_create(dataset=dataset, items=items)
            dataset.refresh_from_db()
        return dataset

    return make


@pytest.fixture
def capitals(make_dataset):
    return make_dataset(
        items=[
            {"input": {"question": "What is the capital of France?"}, "expectedOutput": "Paris"},
            {"input": {"question": "What is the capital of Japan?"}, "expectedOutput": "Tokyo"},
            {"input": {"question": "What is the capital of Peru?"}, "expectedOutput": "Lima"},
        ]
    )


def drain_worker() -> None:
    """Run the real worker in this process until no work is left."""
    Worker(until_idle=True).run()


@pytest.fixture
def run_worker():
    def run(run_id=None) -> DatasetRun | None:
        drain_worker()
        return DatasetRun.objects.get(pk=run_id) if run_id else None

    return run


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked `postgres` need PostgreSQL: `make test` runs them in a
    second pass with DATABASE_URL set; on SQLite they are skipped."""
    if request.node.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://…)")
