"""Store finished items: results, traces, counters and score statistics of a
batch in one transaction, so the counters equal the rows at every moment and
a result never lacks its trace.

The transaction is fenced twice: by the run's status (a cancel that committed
first wins, and the run's rows and counters never change after it is terminal)
and by the chunk lease (a worker that lost its chunk writes nothing).
"""

from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from django.db import DataError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..jsonsafe import encode
from ..models import DatasetRun, DatasetRunResult, RunChunk, Trace, TraceOutbox
from .item import Outcome
from .lifecycle import lease_until
from .rows import EncodedJSON, insert_rows
from .summary import add_latencies, add_scores, add_usage

# Refusals that belong to one row's content; connection trouble is raised to the caller, which retries.
ROW_REFUSALS = (DataError, IntegrityError, ValueError, TypeError)


class Written(Enum):
    OK = "ok"
    LEASE_LOST = "lease lost"
    RUN_FINISHED = "run finished"


def record_outcomes(*, chunk_id: int, run_id: UUID, worker_id: str, outcomes: list[Outcome], export: bool) -> Written:
    """Store a batch of finished items — results, traces, counters, score
    statistics — in one transaction, fenced by the lease and the run's status.

    A row the database refuses becomes that item's error; the rest of the
    batch is written.
    """
    try:
        with transaction.atomic():
            return _record(chunk_id, run_id, worker_id, outcomes, export)
    except ROW_REFUSALS:
        if len(outcomes) == 1:
            return _record_refused(chunk_id, run_id, worker_id, outcomes[0], export)
    # Isolate the refused row(s): each outcome in its own transaction.
    written = Written.OK
    for outcome in outcomes:
        written = record_outcomes(
            chunk_id=chunk_id, run_id=run_id, worker_id=worker_id, outcomes=[outcome], export=export
        )
        if written is not Written.OK:
            return written
    return written


def _record_refused(chunk_id: int, run_id: UUID, worker_id: str, outcome: Outcome, export: bool) -> Written:
    refused = Outcome.failed_without_running(outcome.job, "The database refused this item's result")
    refused.started_at, refused.completed_at = outcome.started_at, outcome.completed_at
    refused.latency_ms, refused.retry_count = outcome.latency_ms, outcome.retry_count
    with transaction.atomic():
        return _record(chunk_id, run_id, worker_id, [refused], export)


def _record(chunk_id: int, run_id: UUID, worker_id: str, outcomes: list[Outcome], export: bool) -> Written:
    written = _write(run_id, outcomes, export)
    if written is Written.RUN_FINISHED:
        return written  # a cancel won: nothing was written
    # The lease fence comes last, so the chunk's row is locked only from here to the
    # commit: the worker's frontier writes (`lifecycle.announce`) to the same row
    # need not wait for a whole batch. A takeover that committed first makes this
    # UPDATE match nothing, and everything above is rolled back.
    if not RunChunk.objects.filter(pk=chunk_id, lease_owner=worker_id, status=RunChunk.Status.RUNNING).update(
        lease_expires_at=lease_until()
    ):
        transaction.set_rollback(True)
        return Written.LEASE_LOST
    return written


def _write(run_id: UUID, outcomes: list[Outcome], export: bool) -> Written:
    # Lock the run row for the counters; it also fences a cancel that already won.
    rows = list(
        DatasetRun.objects.select_for_update()
        .filter(pk=run_id, status=DatasetRun.Status.RUNNING)
        .values_list("score_stats", "latency_stats", "usage_totals")
    )
    if not rows:
        return Written.RUN_FINISHED
    score_stats, latency_stats, usage_totals = rows[0]
    # Probes of the (run, item, repetition) index: a batch's items are scattered over its chunk.
    existing = set(
        DatasetRunResult.objects.filter(run_id=run_id, item_id__in={o.job.item_id for o in outcomes}).values_list(
            "item_id", "repetition"
        )
    )
    fresh = [o for o in outcomes if (o.job.item_id, o.job.repetition) not in existing]
    if not fresh:
        return Written.OK
    now = timezone.now()
    insert_rows(DatasetRunResult, [_result_row(run_id, o, now) for o in fresh])
    traced = [o for o in fresh if o.trace_id and o.spans]
    insert_rows(Trace, [_trace_row(run_id, o) for o in traced])
    if export:
        insert_rows(TraceOutbox, [{"trace": o.trace_id, "attempts": 0, "created_at": now} for o in traced])
    succeeded = sum(1 for o in fresh if o.error is None)
    changes: dict[str, Any] = {
        "succeeded_count": F("succeeded_count") + succeeded,
        "failed_count": F("failed_count") + (len(fresh) - succeeded),
        "updated_at": now,
    }
    if any(o.scores for o in fresh):
        changes["score_stats"] = add_scores(score_stats, (o.scores for o in fresh))
    changes["latency_stats"] = add_latencies(latency_stats, (o.latency_ms for o in fresh))
    if any(o.usage for o in fresh):
        changes["usage_totals"] = add_usage(usage_totals, (o.usage for o in fresh))
    DatasetRun.objects.filter(pk=run_id).update(**changes)
    return Written.OK


def _result_row(run_id: UUID, o: Outcome, now: datetime) -> dict:
    return {
        "id": o.result_id,
        "run": run_id,
        "item": o.job.item_id,
        "item_version": o.job.item_version,
        "repetition": o.job.repetition,
        "input": o.job.input_json,
        "output": o.output_json,
        "expected_output": o.job.expected_json,
        "latency": o.latency_ms,
        "error": o.error,
        "retry_count": o.retry_count,
        "trace_id": o.trace_id if o.spans else None,
        "scores": o.scores,
        "usage": o.usage,
        "started_at": o.started_at,
        "completed_at": o.completed_at,
        "created_at": now,
    }


def _trace_row(run_id: UUID, o: Outcome) -> dict:
    return {
        "trace_id": o.trace_id,
        "run": run_id,
        "result_id": o.result_id,
        "name": f"run item {o.job.item_id}",
        "spans": EncodedJSON(encode(o.spans)),
        "started_at": o.started_at,
    }
