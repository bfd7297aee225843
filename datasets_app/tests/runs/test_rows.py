"""The engine's bulk insert writes what bulk_create would, and a duplicate
result is refused by the database (the executor relies on that)."""

import uuid

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets_app.models import DatasetRun, DatasetRunResult
from datasets_app.runs.rows import insert_rows


def result_row(run, item, **extra):
    now = timezone.now()
    return {
        "id": uuid.uuid4(),
        "run": run.pk,
        "item": item.pk,
        "item_version": 1,
        "repetition": 0,
        "input": {"user_name": "Ana", "someKey": [1, 2]},
        "output": None,
        "expected_output": "Lima",
        "latency": 1.5,
        "error": None,
        "retry_count": 0,
        "trace_id": None,
        "scores": [{"scorerId": "x", "score": 1.0}],
        "usage": None,
        "started_at": now,
        "completed_at": now,
        "created_at": now,
        **extra,
    }


def check_insert(capitals):
    run = DatasetRun.objects.create(dataset=capitals, dataset_version=1, target_type="workflow", target_id="echo")
    item = capitals.items.first()
    insert_rows(DatasetRunResult, [result_row(run, item, output="Lima", trace_id="ab" * 16)])
    stored = DatasetRunResult.objects.get(run=run)
    assert (stored.input, stored.output, stored.trace_id) == (
        {"user_name": "Ana", "someKey": [1, 2]},
        "Lima",
        "ab" * 16,
    )
    assert stored.scores == [{"scorerId": "x", "score": 1.0}]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(DatasetRunResult, [result_row(run, item)])
    assert DatasetRunResult.objects.filter(run=run).count() == 1


@pytest.mark.django_db(transaction=True)
def test_insert_rows_round_trips_and_refuses_duplicates(capitals):
    check_insert(capitals)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_insert_rows_with_copy_on_postgresql(capitals):
    check_insert(capitals)
