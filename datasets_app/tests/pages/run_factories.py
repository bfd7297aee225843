"""Runs, results and traces written straight to the database, so page tests
don't depend on the engine that executes runs."""

from datetime import timedelta

from django.utils import timezone

from datasets_app.models import DatasetRun, DatasetRunResult, Trace
from datasets_app.runs.summary import add_scores


def make_run(dataset, *, status="running", scorer_ids=("exact",), dataset_version=None, total_items=None, **fields):
    return DatasetRun.objects.create(
        dataset=dataset,
        dataset_version=dataset_version or dataset.version,
        target_type="callable",
        target_id="echo",
        scorer_ids=list(scorer_ids),
        status=status,
        total_items=dataset.item_count if total_items is None else total_items,
        started_at=timezone.now() - timedelta(seconds=30),
        completed_at=timezone.now() if status in DatasetRun.TERMINAL_STATUSES else None,
        **fields,
    )


def add_result(run, item, *, output="ok", error=None, score=1.0, latency=100.0, trace_id=None, offset=0, **fields):
    """One result row, with the run's counters moved as the engine moves them."""
    started = timezone.now() - timedelta(seconds=20) + timedelta(milliseconds=offset)
    scores = [
        {"scorerId": scorer_id, "scorerName": scorer_id, "score": score, "reason": "compared", "error": None}
        for scorer_id in run.scorer_ids
    ]
    result = DatasetRunResult.objects.create(
        run=run,
        item=item,
        item_version=item.version,
        input=item.input,
        output=output,
        expected_output=item.expected_output,
        latency=latency,
        error=error,
        trace_id=trace_id,
        scores=fields.pop("scores", scores),
        started_at=started,
        completed_at=started + timedelta(milliseconds=latency),
        **fields,
    )
    if error is None:
        run.succeeded_count += 1
    else:
        run.failed_count += 1
    run.score_stats = add_scores(run.score_stats, [result.scores])
    run.save(update_fields=["succeeded_count", "failed_count", "score_stats"])
    return result


def make_trace(run=None, result=None, *, trace_id="a" * 32, spans=None, name="item"):
    return Trace.objects.create(
        trace_id=trace_id,
        run=run,
        result_id=result.id if result else None,
        name=name,
        spans=spans or [],
        started_at=timezone.now(),
    )
