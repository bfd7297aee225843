"""Run pages: the live run detail (and its polled fragment), result detail,
and the start / cancel / rerun-failed actions.

A poll reads the counters and per-scorer statistics from the run row (the
engine moves them with the results, so they are exact at every poll), one
indexed page of results, and latency aggregates cached for a few seconds
while the run is active and once it is done.
"""

import json
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.core.cache import cache
from django.db import connection
from django.db.models import Avg, Count, F, FloatField, Max, Min, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Floor
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from datasets_app import services
from datasets_app.exceptions import InvalidInput, StateConflict
from datasets_app.models import Dataset, DatasetRun, DatasetRunResult
from datasets_app.runs.summary import HISTOGRAM_BUCKETS, count_passed, latency_percentile, passed_at
from datasets_app.runs.tracing import trace_link
from playground import charts

RESULTS_PER_PAGE = 50
DEFAULT_PASS_THRESHOLD = 0.5
PREVIEW_CHARS = 160
SUMMARY_REFRESH_SECONDS = 5
FINISHED_SUMMARY_SECONDS = 3600


# ---- queries -------------------------------------------------------------------


def score_of(scorer_id: str) -> RawSQL:
    """A result's score from one scorer, read out of its `scores` list in SQL.

    `scores` is `[{scorerId, score, ...}]`; the list's order is not part of the
    contract, so the entry is looked up by scorerId (null when absent or when
    the scorer itself failed).
    """
    column = f'"{DatasetRunResult._meta.db_table}"."scores"'
    if connection.vendor == "postgresql":
        sql = (
            f"(SELECT (entry->>'score')::double precision FROM jsonb_array_elements({column}) entry "
            "WHERE entry->>'scorerId' = %s LIMIT 1)"
        )
    else:
        sql = (
            f"(SELECT json_extract(entry.value, '$.score') FROM json_each({column}) entry "
            "WHERE json_extract(entry.value, '$.scorerId') = %s LIMIT 1)"
        )
    return RawSQL(sql, (scorer_id,), output_field=FloatField())


def _float_param(value: str | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ResultView:
    """What the visitor asked for through GET: filters, sort, page, pass threshold."""

    errors_only: bool = False
    search: str = ""
    below: float | None = None
    scorer: str = ""
    sort: str = ""
    page: int = 1
    threshold: float = DEFAULT_PASS_THRESHOLD

    @classmethod
    def from_query(cls, query, run: DatasetRun) -> "ResultView":
        scorer = query.get("scorer", "")
        if scorer not in run.scorer_ids:
            scorer = run.scorer_ids[0] if run.scorer_ids else ""
        sort = query.get("sort", "")
        if sort not in _sort_choices(run):
            sort = ""
        threshold = _float_param(query.get("threshold"))
        try:
            page = max(1, int(query.get("page", 1)))
        except (TypeError, ValueError):
            page = 1
        return cls(
            errors_only=query.get("errors") in {"1", "on", "true"},
            search=query.get("q", "").strip(),
            below=_float_param(query.get("below")) if scorer else None,
            scorer=scorer,
            sort=sort,
            page=page,
            threshold=DEFAULT_PASS_THRESHOLD if threshold is None else threshold,
        )

    @property
    def is_filtered(self) -> bool:
        return self.errors_only or bool(self.search) or self.below is not None

    def apply(self, results):
        if self.errors_only:
            results = results.filter(error__isnull=False)
        if self.search:
            results = results.filter(output__icontains=self.search)
        if self.below is not None:
            results = results.annotate(filter_score=score_of(self.scorer)).filter(filter_score__lt=self.below)
        if self.sort:
            descending = self.sort.startswith("-")
            key = self.sort.lstrip("-")
            if key.startswith("score:"):
                results = results.annotate(sort_score=score_of(key.removeprefix("score:")))
                field = F("sort_score")
            else:
                field = F("latency")
            ordering = field.desc(nulls_last=True) if descending else field.asc(nulls_last=True)
            return results.order_by(ordering, "id")
        return results.in_display_order()


def _sort_choices(run: DatasetRun) -> set[str]:
    keys = ["latency", *(f"score:{s}" for s in run.scorer_ids)]
    return {*keys, *(f"-{k}" for k in keys)}


def _latency_histogram(results, low: float, high: float) -> list[charts.Bucket]:
    edges = charts.linear_edges(low, high, HISTOGRAM_BUCKETS)
    if len(edges) == 1:
        return [charts.Bucket(low, high, results.count())]
    width = (high - low) / HISTOGRAM_BUCKETS
    rows = (
        results.annotate(bucket=Floor((F("latency") - Value(low)) / Value(width)))
        .order_by()
        .values("bucket")
        .annotate(n=Count("id"))
    )
    counts = [0] * len(edges)
    for row in rows:
        counts[min(max(int(row["bucket"]), 0), len(edges) - 1)] += row["n"]
    return [charts.Bucket(lo, hi, n) for (lo, hi), n in zip(edges, counts, strict=True)]


def scorer_cards(run: DatasetRun, threshold: float) -> list[dict]:
    """Per-scorer mean, pass rate and distribution from the run row's
    `score_stats` (moved with the counters, so exact at every poll). Only a
    pass threshold between histogram buckets needs a scan of the scores."""
    scanned = None
    score_edges = charts.linear_edges(0.0, 1.0, HISTOGRAM_BUCKETS)
    cards = []
    for scorer_id in run.scorer_ids:
        entry = run.score_stats.get(scorer_id) or {"count": 0, "sum": 0.0, "histogram": [0] * HISTOGRAM_BUCKETS}
        scored = entry["count"]
        passed = passed_at(entry["histogram"], threshold)
        if passed is None:
            scanned = scanned if scanned is not None else cached_pass_counts(run, threshold)
            passed = scanned.get(scorer_id, 0)
        cards.append(
            {
                "id": scorer_id,
                "mean": entry["sum"] / scored if scored else None,
                "scored": scored,
                "passed": passed,
                "pass_rate": 100 * passed / scored if scored else None,
                "chart": charts.bar_chart(
                    [charts.Bucket(lo, hi, n) for (lo, hi), n in zip(score_edges, entry["histogram"])],
                    title=f"Distribution of {scorer_id} scores",
                ),
            }
        )
    return cards


def latency_summary(run: DatasetRun) -> dict:
    """Latency percentiles (offset queries on the run's latency index) and histogram."""
    results = DatasetRunResult.objects.filter(run=run)
    totals = results.order_by().aggregate(
        count=Count("id"), latency_min=Min("latency"), latency_max=Max("latency"), latency_mean=Avg("latency")
    )
    count = totals["count"]
    latency_chart = ""
    if count:
        latency_chart = charts.bar_chart(
            _latency_histogram(results, totals["latency_min"], totals["latency_max"]),
            title="Distribution of latency in milliseconds",
            unit=" ms",
        )
    return {
        "result_count": count,
        "latency_p50": latency_percentile(run, 0.50, count=count),
        "latency_p95": latency_percentile(run, 0.95, count=count),
        "latency_mean": totals["latency_mean"],
        "latency_chart": latency_chart,
    }


def _cached(run: DatasetRun, name: str, compute):
    """Recomputed at most every SUMMARY_REFRESH_SECONDS while the run is active
    and once for a finished run, so a poll stays cheap as runs grow."""
    if run.is_terminal:
        key = f"{name}:{run.pk}:{run.status}:{run.done_count}"
        timeout = FINISHED_SUMMARY_SECONDS
    else:
        key = f"{name}:{run.pk}:{int(time.time() // SUMMARY_REFRESH_SECONDS)}"
        timeout = SUMMARY_REFRESH_SECONDS
    return cache.get_or_set(key, compute, timeout)


def cached_pass_counts(run: DatasetRun, threshold: float) -> dict[str, int]:
    return _cached(run, f"run-pass-counts:{threshold}", lambda: count_passed(run, threshold))


def run_summary(run: DatasetRun, threshold: float) -> dict:
    """Scorer cards from the run row (every poll); latency figures cached briefly."""
    return {**_cached(run, "run-latency", lambda: latency_summary(run)), "scorers": scorer_cards(run, threshold)}


# ---- presentation helpers ---------------------------------------------------------


def preview(value, limit: int = PREVIEW_CHARS) -> str:
    """A one-line rendering of user JSON for a table cell (strings without quotes)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_duration(delta: timedelta | None) -> str:
    if delta is None:
        return "—"
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {seconds:02d}s"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{delta.total_seconds():.1f}s" if delta.total_seconds() < 10 else f"{seconds}s"


def elapsed(run: DatasetRun) -> timedelta | None:
    if not run.started_at:
        return None
    return (run.completed_at or timezone.now()) - run.started_at


def _score_cells(result: DatasetRunResult, scorer_ids: list[str], threshold: float) -> list[dict]:
    by_id = {entry.get("scorerId"): entry for entry in result.scores if isinstance(entry, dict)}
    cells = []
    for scorer_id in scorer_ids:
        entry = by_id.get(scorer_id) or {}
        score = entry.get("score")
        cells.append(
            {
                "scorer": scorer_id,
                "score": score,
                "low": isinstance(score, int | float) and score < threshold,
                "reason": entry.get("reason") or "",
                "error": entry.get("error") or "",
            }
        )
    return cells


def _export_links(run: DatasetRun) -> list[dict]:
    return [
        {"format": fmt.upper(), "url": reverse("run-results-export", args=[run.dataset_id, run.id, fmt])}
        for fmt in ("csv", "jsonl")
    ]


def _get_run(dataset_id, run_id) -> DatasetRun:
    return get_object_or_404(DatasetRun.objects.select_related("dataset"), pk=run_id, dataset_id=dataset_id)


def _results_context(request, run: DatasetRun) -> dict:
    view = ResultView.from_query(request.GET, run)
    summary = run_summary(run, view.threshold)
    results = view.apply(DatasetRunResult.objects.filter(run=run))
    total = results.count()
    page_count = max(1, math.ceil(total / RESULTS_PER_PAGE))
    page = min(view.page, page_count)
    offset = (page - 1) * RESULTS_PER_PAGE
    rows = []
    for result in results[offset : offset + RESULTS_PER_PAGE]:
        rows.append(
            {
                "result": result,
                "input": preview(result.input),
                "output": preview(result.output),
                "expected": preview(result.expected_output),
                "scores": _score_cells(result, run.scorer_ids, view.threshold),
                "trace_url": trace_link(result.trace_id),
            }
        )
    fragment_url = reverse("run-results-fragment", args=[run.dataset_id, run.id])
    query = request.GET.urlencode()
    return {
        "dataset": run.dataset,
        "run": run,
        "view": view,
        "summary": summary,
        "rows": rows,
        "total": total,
        "page": page,
        "page_count": page_count,
        "first_row": offset + 1 if rows else 0,
        "last_row": offset + len(rows),
        "pending_count": max(0, run.total_items - run.done_count),
        "elapsed": format_duration(elapsed(run)),
        "poll_url": f"{fragment_url}?{query}" if query else fragment_url,
        "run_url": run.get_absolute_url(),
        "export_links": _export_links(run),
        "score_columns": [
            _sort_link(request, run, view, f"score:{s}", s, slot=f"score-{n}") for n, s in enumerate(run.scorer_ids)
        ],
        "latency_column": _sort_link(request, run, view, "latency", "Latency (ms)", slot="latency"),
    }


def _sort_link(request, run: DatasetRun, view: ResultView, key: str, label: str, *, slot: str) -> dict:
    """A sortable column header: ascending first, a second click flips it."""
    state = "ascending" if view.sort == key else "descending" if view.sort == f"-{key}" else ""
    params = request.GET.copy()
    params.pop("page", None)
    params["sort"] = f"-{key}" if state == "ascending" else key
    return {"label": label, "state": state, "slot": slot, "url": f"{run.get_absolute_url()}?{params.urlencode()}"}


# ---- pages ----------------------------------------------------------------------


def run_detail(request, dataset_id, run_id):
    run = _get_run(dataset_id, run_id)
    return render(request, "runs/detail.html", _results_context(request, run))


def run_results_fragment(request, dataset_id, run_id):
    """The polled results section alone; without hx-get once the run is terminal."""
    run = _get_run(dataset_id, run_id)
    return render(request, "runs/detail.html#results-section", _results_context(request, run))


def result_detail(request, dataset_id, run_id, result_id):
    result = get_object_or_404(
        DatasetRunResult.objects.select_related("run", "run__dataset"),
        pk=result_id,
        run_id=run_id,
        run__dataset_id=dataset_id,
    )
    run = result.run
    scores = [entry for entry in result.scores if isinstance(entry, dict)]
    return render(
        request,
        "runs/result_detail.html",
        {
            "dataset": run.dataset,
            "run": run,
            "result": result,
            "scores": scores,
            "trace_url": trace_link(result.trace_id),
            "usage": result.usage if isinstance(result.usage, dict) else None,
        },
    )


# ---- actions --------------------------------------------------------------------


def _runs_tab_url(dataset: Dataset) -> str:
    return f"{dataset.get_absolute_url()}?tab=runs"


def _report(request, exc: InvalidInput | StateConflict) -> None:
    messages.error(request, exc.message)
    for field, errors in exc.errors.items():
        for error in errors:
            if error != exc.message and not exc.message.endswith(error):
                messages.error(request, f"{field}: {error}")


@require_POST
def run_start(request, dataset_id):
    from playground.forms import RunStartForm

    dataset = get_object_or_404(Dataset, pk=dataset_id)
    form = RunStartForm(dataset=dataset, data=request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else error)
        return HttpResponseRedirect(_runs_tab_url(dataset))
    try:
        run = services.run_start(**form.to_run_kwargs(), user=request.user)
    except (InvalidInput, StateConflict) as exc:
        _report(request, exc)
        return HttpResponseRedirect(_runs_tab_url(dataset))
    messages.success(request, f"Run started over {run.total_items} items.")
    return redirect(run)


@require_POST
def run_cancel(request, dataset_id, run_id):
    run = _get_run(dataset_id, run_id)
    try:
        services.run_cancel(run=run)
    except StateConflict as exc:
        _report(request, exc)
    else:
        messages.success(request, "Run cancelled.")
    return redirect(run)


@require_POST
def run_rerun_failed(request, dataset_id, run_id):
    run = _get_run(dataset_id, run_id)
    try:
        rerun = services.run_rerun_failed(run=run, user=request.user)
    except (InvalidInput, StateConflict) as exc:
        _report(request, exc)
        return redirect(run)
    messages.success(request, f"Rerunning {rerun.total_items} failed items.")
    return redirect(rerun)
