"""Factories for API tests that need run results without executing a run."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets_app.models import DatasetRun, DatasetRunResult, Trace


@pytest.fixture
def make_run(db):
    def make(dataset, *, status=DatasetRun.Status.COMPLETED, scorer_ids=("exact-match",), **fields):
        total = fields.pop("total_items", dataset.item_count)
        return DatasetRun.objects.create(
            dataset=dataset,
            dataset_version=fields.pop("dataset_version", dataset.version),
            target_type="workflow",
            target_id="echo",
            scorer_ids=list(scorer_ids),
            status=status,
            total_items=total,
            **fields,
        )

    return make


@pytest.fixture
def make_result(db):
    """A result row; `scores` is {scorerId: score}; `traced` also writes its Trace."""

    def make(run, item, *, scores=None, error=None, traced=True, repetition=0, started_at=None, output="ok"):
        started_at = started_at or timezone.now()
        trace_id = uuid.uuid4().hex if traced else None
        result = DatasetRunResult.objects.create(
            run=run,
            item=item,
            item_version=item.version,
            repetition=repetition,
            input=item.input,
            output=None if error else output,
            expected_output=item.expected_output,
            latency=12.5,
            error=error,
            retry_count=0,
            trace_id=trace_id,
            scores=[
                {"scorerId": s, "scorerName": s, "score": v, "reason": None, "error": None if v is not None else "boom"}
                for s, v in (scores or {}).items()
            ],
            started_at=started_at,
            completed_at=started_at + timedelta(milliseconds=12.5),
        )
        if traced:
            Trace.objects.create(
                trace_id=trace_id,
                run=run,
                result_id=result.id,
                name="item",
                started_at=started_at,
                spans=[
                    {
                        "spanId": "a" * 16,
                        "parentSpanId": None,
                        "name": "item",
                        "startTime": started_at.isoformat(),
                        "endTime": started_at.isoformat(),
                        "status": "ok",
                        "attributes": {"item.id": str(item.id)},
                    }
                ],
            )
        return result

    return make
