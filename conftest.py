"""Fixtures shared by every test package (`datasets_app/tests`, `playground/tests`):
users, logged-in clients, datasets, a real worker."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from datasets_app import projects, services
from datasets_app.models import Dataset, DatasetRun, Project
from datasets_app.runs.worker import Worker


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The default hasher costs about a second per user on these machines;
    tests check who may log in, not the hasher's strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked `postgres` need PostgreSQL: `make test` runs them in a
    second pass with DATABASE_URL set; on SQLite they are skipped."""
    if request.node.get_closest_marker("postgres"):
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://…)")


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


def new_item(entry: dict[str, Any]) -> services.NewItem:
    """An item written as the API and import files write it, as `services` takes it."""
    item: services.NewItem = {"input": entry["input"]}
    if "expectedOutput" in entry:
        item["expected_output"] = entry["expectedOutput"]
    if "context" in entry:
        item["context"] = entry["context"]
    return item


@pytest.fixture
def project(user) -> Project:
    """Alice's personal project: where `make_dataset` puts datasets unless told otherwise."""
    return projects.personal_project(user)


@pytest.fixture
def make_dataset(db, request) -> Callable[..., Dataset]:
    """`make_dataset(name, items=[{"input", "expectedOutput"?, "context"?}], project=…, **fields)`
    (by default in alice's personal project)."""

    def make(name: str = "Capitals", items: list[dict[str, Any]] | None = None, **fields: Any) -> Dataset:
        fields.setdefault("project", request.getfixturevalue("project"))
        dataset = services.dataset_create(name=name, **fields)
        if items:
            services.items_bulk_create(dataset=dataset, items=[new_item(entry) for entry in items])
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


@pytest.fixture
def run_worker():
    """Run the real worker in this process until no work is left; returns the run, when given."""

    def run(run_id=None) -> DatasetRun | None:
        Worker(until_idle=True).run()
        return DatasetRun.objects.get(pk=run_id) if run_id else None

    return run
