"""Writes that race a dataset's delete through the API answer 2xx, 404 or 409,
never 500, and leave nothing of the dataset behind.

Real threads on PostgreSQL, each with its own database connection (closed
when the thread ends), released together by a barrier; each round repeats the
race on a fresh dataset, so the delete lands at a different point of the
writes. Every write takes the dataset's row lock first (`services._lock_dataset`):
the delete and the writes queue instead of deadlocking, and the writes that
come after the delete find the dataset gone (404). The last test deletes a
dataset while a real worker writes its run's results, which take no dataset
lock (the delete locks the run's chunks and the run, as the writer does).
`pytest -s` prints the status codes each race answered.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from datasets_app import services
from datasets_app.models import (
    Dataset,
    DatasetItem,
    DatasetItemVersion,
    DatasetRun,
    DatasetRunResult,
    DatasetVersion,
    RunChunk,
    Trace,
)
from datasets_app.tests.factories import add_result, end_run, make_run

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 5
WRITERS = 20


@pytest.fixture
def token(user) -> str:
    return Token.objects.create(user=user).key


def race(token: str, requests: list[Callable[[APIClient], Any]]) -> Counter[int]:
    """Send the requests at once, each from its own thread and connection; the status codes."""
    barrier = threading.Barrier(len(requests))
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def send(request: Callable[[APIClient], Any]) -> None:
        client = APIClient(raise_request_exception=False)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=30)
            status = request(client).status_code
        except Exception:  # a crash in the test client counts as the 500 it would be
            status = 500
            raise
        finally:
            connection.close()
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=send, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    return statuses


def assert_gone(dataset_id: Any) -> None:
    """The dataset and everything under it are deleted: no orphan rows."""
    assert not Dataset.objects.filter(pk=dataset_id).exists()
    assert not DatasetItem.objects.filter(dataset_id=dataset_id).exists()
    assert not DatasetItemVersion.objects.filter(dataset_id=dataset_id).exists()
    assert not DatasetVersion.objects.filter(dataset_id=dataset_id).exists()
    assert not DatasetRun.objects.filter(dataset_id=dataset_id).exists()
    assert not RunChunk.objects.filter(run__dataset_id=dataset_id).exists()
    # Rows whose run or item went with the dataset (a foreign key to nothing).
    assert not DatasetRunResult.objects.exclude(run__in=DatasetRun.objects.all()).exists()
    assert not DatasetRunResult.objects.exclude(item__in=DatasetItem.objects.all()).exists()
    assert not Trace.objects.filter(run__isnull=False).exclude(run__in=DatasetRun.objects.all()).exists()


def items(count: int) -> list[dict[str, Any]]:
    return [{"input": {"question": f"q{n}"}, "expectedOutput": f"a{n}"} for n in range(count)]


def request(method: str, path: str, body: Any = None) -> Callable[[APIClient], Any]:
    """One API request, for `race` to send."""
    return lambda client: getattr(client, method)(path, body, format="json")


def delete(dataset: Dataset) -> Callable[[APIClient], Any]:
    return request("delete", f"/api/datasets/{dataset.pk}")


def test_item_patches_racing_a_dataset_delete_answer_200_404_or_409(make_dataset, token):
    totals: Counter[int] = Counter()
    for _ in range(ROUNDS):
        dataset = make_dataset(items=items(WRITERS))
        patches = [
            request("patch", f"/api/datasets/{dataset.pk}/items/{item_id}", {"expectedOutput": "changed"})
            for item_id in dataset.items.values_list("pk", flat=True)
        ]
        statuses = race(token, [*patches[: WRITERS // 2], delete(dataset), *patches[WRITERS // 2 :]])

        assert set(statuses) <= {200, 404, 409}, statuses
        assert statuses[200] >= 1  # the delete
        assert_gone(dataset.pk)
        totals += statuses
    print(f"\nitem PATCH × {WRITERS} vs dataset DELETE, {ROUNDS} rounds: {dict(totals)}")


def test_bulk_adds_racing_a_dataset_delete_answer_201_or_404(make_dataset, token):
    totals: Counter[int] = Counter()
    for _ in range(ROUNDS):
        dataset = make_dataset(items=items(3))
        adds = [request("post", f"/api/datasets/{dataset.pk}/items/bulk", {"items": items(50)})] * (WRITERS // 2)
        statuses = race(token, [*adds[:5], delete(dataset), *adds[5:]])

        assert set(statuses) <= {200, 201, 404}, statuses
        assert statuses[200] == 1  # the delete
        assert_gone(dataset.pk)
        totals += statuses
    print(f"\nbulk add × {WRITERS // 2} vs dataset DELETE, {ROUNDS} rounds: {dict(totals)}")


def test_run_starts_and_edits_racing_a_dataset_delete_answer_2xx_or_404(make_dataset, token):
    totals: Counter[int] = Counter()
    for _ in range(ROUNDS):
        dataset = make_dataset(items=items(30))
        finished = make_run(dataset)
        for item in dataset.items.all()[:3]:
            add_result(finished, item, error="failed", trace_id=None)
        end_run(finished)
        body = {"targetType": "workflow", "targetId": "echo", "scorerIds": ["exact-match"]}
        starts = [request("post", f"/api/datasets/{dataset.pk}/runs", body)] * 8
        reruns = [request("post", f"/api/datasets/{dataset.pk}/runs/{finished.pk}/rerun-failed")] * 4
        renames = [request("patch", f"/api/datasets/{dataset.pk}/runs/{finished.pk}", {"name": "renamed"})] * 2
        statuses = race(token, [*starts[:4], *reruns[:2], delete(dataset), *starts[4:], *reruns[2:], *renames])

        assert set(statuses) <= {200, 201, 404}, statuses
        assert 1 <= statuses[200] <= 3  # the delete, and renames before it
        assert_gone(dataset.pk)
        totals += statuses
    print(f"\nrun start × 8, rerun × 4 and run PATCH × 2 vs dataset DELETE, {ROUNDS} rounds: {dict(totals)}")


def test_item_deletes_and_dataset_edits_racing_a_dataset_delete_answer_200_or_404(make_dataset, token):
    totals: Counter[int] = Counter()
    for _ in range(ROUNDS):
        dataset = make_dataset(items=items(10))
        ids = [str(pk) for pk in dataset.items.values_list("pk", flat=True)]
        writes = [
            *[request("delete", f"/api/datasets/{dataset.pk}/items/{pk}") for pk in ids[:5]],
            request("delete", f"/api/datasets/{dataset.pk}/items/bulk", {"itemIds": ids[5:]}),
            request("patch", f"/api/datasets/{dataset.pk}", {"description": "edited"}),
            request("post", f"/api/datasets/{dataset.pk}/items", {"input": "one more"}),
            delete(dataset),
            delete(dataset),
        ]
        statuses = race(token, writes)

        assert set(statuses) <= {200, 201, 404}, statuses
        assert_gone(dataset.pk)
        totals += statuses
    print(f"\nitem deletes, dataset PATCH, item add and 2 DELETEs vs each other, {ROUNDS} rounds: {dict(totals)}")


def test_a_dataset_delete_racing_a_worker_writing_results_answers_200(make_dataset, token, settings):
    """The engine writes results without the dataset's lock; the delete locks the
    run's chunks and the run the way the writer does, so no result is added
    behind it (which would fail the delete's foreign keys at commit: a 500)."""
    settings.PLAYGROUND_CHUNK_SIZE = 25
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    totals: Counter[int] = Counter()
    for round_ in range(ROUNDS):
        dataset = make_dataset(items=items(200))
        run = services.run_start(
            dataset=dataset, target_type="workflow", target_id="echo", scorer_ids=["exact-match"], max_concurrency=50
        )
        worker = threading.Thread(target=run_worker_until_idle)
        worker.start()
        wait_for(DatasetRunResult.objects.filter(run=run), at_least=10 + 20 * round_)

        response = client.delete(f"/api/datasets/{dataset.pk}")

        worker.join(timeout=120)
        assert not worker.is_alive(), "the worker did not stop"
        assert response.status_code == 200, response.content
        assert_gone(dataset.pk)
        totals[response.status_code] += 1
    print(f"\ndataset DELETE vs a worker writing results, {ROUNDS} rounds: {dict(totals)}")


def run_worker_until_idle() -> None:
    from datasets_app.runs.worker import Worker

    try:
        Worker(until_idle=True).run()
    finally:
        connection.close()


def wait_for(results: Any, *, at_least: int, timeout: float = 60) -> None:
    """Until the worker has written that many results."""
    deadline = time.monotonic() + timeout
    while results.count() < at_least:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
