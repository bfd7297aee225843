"""A write that another request's commit overtakes: between the view reading
the dataset, item or run and the service writing, the dataset was changed or
deleted. Each test puts the other request's commit exactly there, so the
interleavings that test_races.py meets by chance on PostgreSQL are pinned on
every database: a deleted dataset answers 404, and nothing committed by
another request is written over."""

from typing import Any

import pytest
from django.db import OperationalError, transaction

from datasets_app import access, services
from datasets_app.api import views
from datasets_app.models import Dataset, DatasetRun, DatasetVersion
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = pytest.mark.django_db


def fresh(dataset: Dataset) -> Dataset:
    """The dataset as another request would load it."""
    return Dataset.objects.get(pk=dataset.pk)


@pytest.fixture
def after_read(monkeypatch):
    """`after_read(module, name, action)`: `action()` runs once, right after the
    view's first call of `module.name` returns (another request's commit)."""

    def install(module: Any, name: str, action: Any) -> None:
        original = getattr(module, name)
        done: list[bool] = []

        def read_then_act(*args: Any, **kwargs: Any) -> Any:
            found = original(*args, **kwargs)
            if not done:
                done.append(True)
                action()
            return found

        monkeypatch.setattr(module, name, read_then_act)

    return install


def test_a_dataset_patch_keeps_the_items_added_since_it_read_the_dataset(api, make_dataset, after_read):
    dataset = make_dataset()
    after_read(access, "dataset_for", lambda: services.item_create(dataset=fresh(dataset), input={"question": "added"}))

    response = api.patch(f"/api/datasets/{dataset.pk}", {"description": "renamed"}, format="json")

    assert response.status_code == 200
    assert (response.json()["version"], response.json()["itemCount"]) == (1, 1)
    dataset.refresh_from_db()
    assert (dataset.description, dataset.version, dataset.item_count) == ("renamed", 1, 1)
    # The dataset's version was not set back, so the next one is new (no duplicate version).
    assert api.post(f"/api/datasets/{dataset.pk}/items", {"input": "next"}, format="json").status_code == 201
    assert list(
        DatasetVersion.objects.filter(dataset=dataset).order_by("version").values_list("version", flat=True)
    ) == [1, 2]


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_an_item_write_whose_dataset_was_deleted_meanwhile_answers_404(api, capitals, after_read, method):
    item = capitals.items.first()
    after_read(views, "get_live_item", lambda: services.dataset_delete(dataset=fresh(capitals)))

    response = getattr(api, method)(f"/api/datasets/{capitals.pk}/items/{item.pk}", {"input": 1}, format="json")

    assert response.status_code == 404
    assert not Dataset.objects.filter(pk=capitals.pk).exists()


def test_a_cancel_whose_dataset_was_deleted_meanwhile_answers_404(api, capitals, after_read):
    run = make_run(capitals)
    after_read(views, "get_run", lambda: services.dataset_delete(dataset=fresh(capitals)))

    response = api.post(f"/api/datasets/{capitals.pk}/runs/{run.pk}/cancel")

    assert response.status_code == 404


def test_a_rerun_whose_dataset_was_deleted_meanwhile_answers_404(api, capitals, after_read):
    run = make_run(capitals)
    add_result(run, capitals.items.first(), error="failed")
    end_run(run)
    after_read(views, "get_run", lambda: services.dataset_delete(dataset=fresh(capitals)))

    response = api.post(f"/api/datasets/{capitals.pk}/runs/{run.pk}/rerun-failed")

    assert response.status_code == 404
    assert not DatasetRun.objects.exists()


@pytest.fixture
def delete_on_commit(monkeypatch):
    """The dataset is deleted by another request right after the next item
    write commits, before the service returns."""

    def install(dataset: Dataset) -> None:
        original = services._next_dataset_version

        def next_version(locked: Dataset) -> int:
            transaction.on_commit(lambda: Dataset.objects.filter(pk=dataset.pk).delete())
            return original(locked)

        monkeypatch.setattr(services, "_next_dataset_version", next_version)

    return install


@pytest.mark.django_db(transaction=True)
def test_an_item_add_that_committed_before_its_dataset_was_deleted_answers_201(api, capitals, delete_on_commit):
    delete_on_commit(capitals)

    response = api.post(f"/api/datasets/{capitals.pk}/items/bulk", {"items": [{"input": 1}]}, format="json")

    assert response.status_code == 201
    assert response.json()["count"] == 1
    assert not Dataset.objects.filter(pk=capitals.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_an_item_delete_that_committed_before_its_dataset_was_deleted_answers_200(api, capitals, delete_on_commit):
    ids = [str(pk) for pk in capitals.items.values_list("pk", flat=True)]
    delete_on_commit(capitals)

    response = api.delete(f"/api/datasets/{capitals.pk}/items/bulk", {"itemIds": ids}, format="json")

    assert response.status_code == 200
    assert response.json() == {"success": True, "deletedCount": 3}


class DeadlockDetected(Exception):
    sqlstate = "40P01"  # what PostgreSQL reports when it aborts a transaction to break a deadlock


@pytest.fixture
def deadlocks(monkeypatch):
    """`deadlocks(n)`: the next n dataset deletes are aborted as deadlocked (as
    PostgreSQL aborts one of a delete and a worker locking in the other order)."""

    def install(times: int) -> list[Any]:
        original = Dataset.delete
        attempts: list[Any] = []

        def delete(self: Dataset, *args: Any, **kwargs: Any) -> Any:
            attempts.append(self.pk)
            if len(attempts) <= times:
                raise OperationalError("deadlock detected") from DeadlockDetected()
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Dataset, "delete", delete)
        return attempts

    return install


@pytest.mark.django_db(transaction=True)
def test_a_dataset_delete_aborted_by_a_deadlock_is_tried_again(api, capitals, deadlocks):
    attempts = deadlocks(1)

    response = api.delete(f"/api/datasets/{capitals.pk}")

    assert response.status_code == 200
    assert len(attempts) == 2
    assert not Dataset.objects.filter(pk=capitals.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_dataset_delete_deadlocked_every_time_answers_409(api, capitals, deadlocks):
    attempts = deadlocks(100)

    response = api.delete(f"/api/datasets/{capitals.pk}")

    assert response.status_code == 409
    assert response.json() == {"message": "Other changes to this dataset got in the way; try again"}
    assert len(attempts) == services.DEADLOCK_RETRIES
    assert Dataset.objects.filter(pk=capitals.pk).exists()
