"""Runs and results made the way the product makes them, without executing a target.

`make_run` starts a run with `services.run_start` and claims its chunks as a
worker does; `add_result` stores one item's outcome through the engine's
writer (`recording.record_outcomes`), which also moves the run's counters and
score statistics; `end_run` finishes, fails or cancels the run through
`lifecycle` and `services`. So every row, counter and statistic a test reads
is one a real run could have left.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from datasets_app import services
from datasets_app.models import Dataset, DatasetItem, DatasetRun, DatasetRunResult, RunChunk
from datasets_app.runs import lifecycle, recording
from datasets_app.runs.item import Outcome, encode_json

WORKER = "test-factory"
Status = DatasetRun.Status


def make_run(
    dataset: Dataset,
    *,
    status: str = Status.RUNNING,
    target: str = "workflow/echo",
    scorer_ids: tuple[str, ...] = ("exact-match",),
    **settings: Any,
) -> DatasetRun:
    """A run of the dataset's items in `status`; a running one is ready for `add_result`."""
    target_type, target_id = target.split("/")
    # Started and claimed in one transaction: a worker process polling the same
    # database (the browser tests run one) never sees its chunks pending.
    with transaction.atomic():
        run = services.run_start(
            dataset=dataset, target_type=target_type, target_id=target_id, scorer_ids=list(scorer_ids), **settings
        )
        if status != Status.PENDING:
            while lifecycle.claim_chunk(worker_id=WORKER, run_id=run.pk):
                pass
    if status not in (Status.PENDING, Status.RUNNING):
        end_run(run, status)
    run.refresh_from_db()
    return run


def add_result(
    run: DatasetRun,
    item: DatasetItem,
    *,
    output: Any = "ok",
    error: str | None = None,
    score: float | None = 1.0,
    scores: dict[str, float | None] | None = None,
    latency: float = 100.0,
    started_at: datetime | None = None,
    repetition: int = 0,
    retry_count: int = 0,
    usage: dict[str, Any] | None = None,
    trace_id: str | None = None,
    spans: list[dict[str, Any]] | None = None,
) -> DatasetRunResult:
    """Store one item's outcome in a running run (and refresh `run`).

    Every scorer of the run gives `score` unless `scores` ({scorerId: score})
    says otherwise; a score of None is a scorer that failed. A `trace_id`
    stores a trace of `spans` (by default one span for the item).
    """
    started_at = started_at or timezone.now()
    completed_at = started_at + timedelta(milliseconds=latency)
    if scores is None:
        scores = dict.fromkeys(run.scorer_ids, score)
    chunk = RunChunk.objects.filter(run=run, last_item_id__gte=item.pk).order_by("index").first()
    assert chunk is not None, "the item is not one of the run's"
    # The job as the engine would hand it to an executor.
    job = next((j for j in lifecycle.chunk_jobs(chunk) if (j.item_id, j.repetition) == (item.pk, repetition)), None)
    assert job is not None, f"the run has no repetition {repetition} of the item"
    outcome = Outcome(
        job=job,
        output=None if error else output,
        output_json=None if error else encode_json(output),
        error=error,
        usage=usage,
        scores=[
            {
                "scorerId": scorer_id,
                "scorerName": scorer_id,
                "score": value,
                "reason": None if value is None else "compared",
                "error": "the scorer failed" if value is None else None,
            }
            for scorer_id, value in scores.items()
        ],
        retry_count=retry_count,
        latency_ms=latency,
        started_at=started_at,
        completed_at=completed_at,
        trace_id=trace_id,
        spans=(spans or [_item_span(item, started_at, completed_at)]) if trace_id else [],
    )
    written = recording.record_outcomes(
        chunk_id=chunk.pk, run_id=run.pk, worker_id=WORKER, outcomes=[outcome], export=False
    )
    assert written is recording.Written.OK, f"the result was not written: {written.value}"
    run.refresh_from_db()  # the counters and statistics the writer moved
    return DatasetRunResult.objects.get(pk=outcome.result_id)


def _item_span(item: DatasetItem, started_at: datetime, completed_at: datetime) -> dict[str, Any]:
    return {
        "spanId": "a" * 16,
        "parentSpanId": None,
        "name": "run item",
        "startTime": started_at.isoformat(),
        "endTime": completed_at.isoformat(),
        "status": "ok",
        "statusMessage": None,
        "attributes": {"item.id": str(item.pk)},
    }


def end_run(run: DatasetRun, status: str = Status.COMPLETED, *, error: str = "The target is not registered") -> None:
    """End the run as the engine would: its chunks finished (`completed`, or
    `failed` when every item failed), failed as a whole with `error`, or cancelled."""
    if status == Status.CANCELLED:
        services.run_cancel(run=run)
    elif status == Status.FAILED:
        lifecycle.fail_run(run_id=run.pk, message=error)
    else:
        for chunk_id in RunChunk.objects.filter(run=run).values_list("pk", flat=True):
            lifecycle.finish_chunk(chunk_id=chunk_id, run_id=run.pk, worker_id=WORKER)
    run.refresh_from_db()
