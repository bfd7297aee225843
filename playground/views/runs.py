"""Run pages: the live run detail (and its polled fragment), result detail,
and the start / cancel / rerun-failed actions.

A poll reads the counters and per-scorer statistics from the run row, one
indexed page of results, and latency figures cached for a few seconds; every
figure comes from `datasets_app.runs.summary`.
"""

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from datasets_app import access, services
from datasets_app.api.throttles import RunStartThrottle
from datasets_app.exceptions import InvalidInput, StateConflict
from datasets_app.models import Dataset, DatasetRun, DatasetRunResult, DatasetRunResultQuerySet, ProjectRole
from datasets_app.runs import summary
from datasets_app.runs.tracing import trace_link
from playground import charts
from playground.forms import RunStartForm

from .params import finite_float, page_number

RESULTS_PER_PAGE = 50


@dataclass(frozen=True)
class ResultFilters:
    """What the visitor asked the results table for through GET: filters, sort,
    page and the pass threshold of the score cards."""

    errors_only: bool = False
    search: str = ""
    below: float | None = None
    scorer: str = ""
    sort: str = ""
    page: int = 1
    threshold: float = summary.DEFAULT_PASS_THRESHOLD

    @classmethod
    def from_query(cls, query: QueryDict, run: DatasetRun) -> Self:
        scorer = query.get("scorer", "")
        if scorer not in run.scorer_ids:
            scorer = run.scorer_ids[0] if run.scorer_ids else ""
        sort = query.get("sort", "")
        if sort not in _sort_choices(run):
            sort = ""
        threshold = finite_float(query.get("threshold"))
        return cls(
            errors_only=query.get("errors") in {"1", "on", "true"},
            search=query.get("q", "").strip(),
            below=finite_float(query.get("below")) if scorer else None,
            scorer=scorer,
            sort=sort,
            page=page_number(query.get("page")),
            threshold=summary.DEFAULT_PASS_THRESHOLD if threshold is None else threshold,
        )

    @property
    def is_filtered(self) -> bool:
        return self.errors_only or bool(self.search) or self.below is not None

    def apply(self, results: DatasetRunResultQuerySet) -> DatasetRunResultQuerySet:
        if self.errors_only:
            results = results.failed()
        if self.search:
            results = results.filter(output__icontains=self.search)
        if self.below is not None:
            results = results.scored_below(self.scorer, self.below)
        descending, key = self.sort.startswith("-"), self.sort.lstrip("-")
        if key.startswith("score:"):
            return results.ordered_by_score(key.removeprefix("score:"), descending=descending)
        if key == "latency":
            return results.ordered_by_latency(descending=descending)
        return results.in_display_order()


def _sort_choices(run: DatasetRun) -> set[str]:
    keys = ["latency", *(f"score:{s}" for s in run.scorer_ids)]
    return {*keys, *(f"-{k}" for k in keys)}


def _score_cards(run: DatasetRun, threshold: float) -> list[dict[str, Any]]:
    return [
        {
            "stats": stats,
            "chart": charts.bar_chart(stats.buckets(), title=f"Distribution of {stats.scorer_id} scores"),
        }
        for stats in summary.scorer_stats(run, pass_threshold=threshold)
        if stats.scorer_id in run.scorer_ids
    ]


def _latency_card(run: DatasetRun) -> dict[str, Any]:
    latency = summary.latency_summary(run)
    chart = charts.bar_chart(latency.histogram, title="Distribution of latency in milliseconds", unit=" ms")
    return {"stats": latency, "chart": chart}


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


def _score_cells(result: DatasetRunResult, scorer_ids: list[str], threshold: float) -> list[dict[str, Any]]:
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


def _export_links(run: DatasetRun) -> list[dict[str, str]]:
    return [
        {"format": fmt.upper(), "url": reverse("run-results-export", args=[run.dataset_id, run.id, fmt])}
        for fmt in ("csv", "jsonl")
    ]


def _get_run(request: HttpRequest, dataset_id: UUID, run_id: UUID, *, needs: ProjectRole = access.VIEWER) -> DatasetRun:
    return access.run_for(request.user, dataset_id, run_id, needs=needs)


def _results_context(request: HttpRequest, run: DatasetRun) -> dict[str, Any]:
    filters = ResultFilters.from_query(request.GET, run)
    results = filters.apply(DatasetRunResult.objects.filter(run=run))
    total = results.count()
    page_count = max(1, math.ceil(total / RESULTS_PER_PAGE))
    page = min(filters.page, page_count)
    offset = (page - 1) * RESULTS_PER_PAGE
    rows = [
        {
            "result": result,
            "scores": _score_cells(result, run.scorer_ids, filters.threshold),
            "trace_url": trace_link(result.trace_id),
        }
        for result in results[offset : offset + RESULTS_PER_PAGE]
    ]
    fragment_url = reverse("run-results-fragment", args=[run.dataset_id, run.id])
    query = request.GET.urlencode()
    return {
        "dataset": run.dataset,
        "run": run,
        "filters": filters,
        "score_cards": _score_cards(run, filters.threshold),
        "latency_card": _latency_card(run),
        "rows": rows,
        "total": total,
        "page": page,
        "page_count": page_count,
        "first_row": offset + 1 if rows else 0,
        "last_row": offset + len(rows),
        "elapsed": format_duration(run.elapsed),
        "poll_url": f"{fragment_url}?{query}" if query else fragment_url,
        "run_url": run.get_absolute_url(),
        "export_links": _export_links(run),
        "score_columns": [
            _sort_link(request, run, filters, f"score:{s}", s, slot=f"score-{n}") for n, s in enumerate(run.scorer_ids)
        ],
        "latency_column": _sort_link(request, run, filters, "latency", "Latency (ms)", slot="latency"),
    }


def _sort_link(
    request: HttpRequest, run: DatasetRun, filters: ResultFilters, key: str, label: str, *, slot: str
) -> dict[str, str]:
    """A sortable column header: ascending first, a second click flips it."""
    state = "ascending" if filters.sort == key else "descending" if filters.sort == f"-{key}" else ""
    params = request.GET.copy()
    params.pop("page", None)
    params["sort"] = f"-{key}" if state == "ascending" else key
    return {"label": label, "state": state, "slot": slot, "url": f"{run.get_absolute_url()}?{params.urlencode()}"}


# ---- pages ----------------------------------------------------------------------


@require_GET
def run_detail(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    run = _get_run(request, dataset_id, run_id)
    return render(request, "runs/detail.html", _results_context(request, run))


@require_GET
def run_results_fragment(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    """The polled results section alone; without hx-get once the run is terminal."""
    run = _get_run(request, dataset_id, run_id)
    return render(request, "runs/detail.html#results-section", _results_context(request, run))


@require_GET
def result_detail(request: HttpRequest, dataset_id: UUID, run_id: UUID, result_id: UUID) -> HttpResponse:
    run = _get_run(request, dataset_id, run_id)
    result = get_object_or_404(DatasetRunResult, pk=result_id, run=run)
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


def _report(request: HttpRequest, exc: InvalidInput | StateConflict) -> None:
    """A service's refusal as messages: its summary, then each reason it does not already say."""
    messages.error(request, exc.message)
    for errors in exc.errors.values():
        for error in errors:
            if not exc.message.endswith(error):
                messages.error(request, error)


@require_POST
def run_start(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id, needs=access.EDITOR)
    if not RunStartThrottle().allow_request(request, None):
        return render(request, "runs/too_many_starts.html", {"dataset": dataset}, status=429)
    form = RunStartForm(dataset=dataset, data=request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else str(error))
        return HttpResponseRedirect(_runs_tab_url(dataset))
    try:
        run = services.run_start(**form.to_run_kwargs(), user=request.user)
    except (InvalidInput, StateConflict) as exc:
        _report(request, exc)
        return HttpResponseRedirect(_runs_tab_url(dataset))
    messages.success(request, f"Run started over {run.total_items} items.")
    return redirect(run)


@require_POST
def run_cancel(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    run = _get_run(request, dataset_id, run_id, needs=access.EDITOR)
    try:
        services.run_cancel(run=run)
    except StateConflict as exc:
        _report(request, exc)
    else:
        messages.success(request, "Run cancelled.")
    return redirect(run)


@require_POST
def run_rerun_failed(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    run = _get_run(request, dataset_id, run_id, needs=access.EDITOR)
    if not RunStartThrottle().allow_request(request, None):
        return render(request, "runs/too_many_starts.html", {"dataset": run.dataset}, status=429)
    try:
        rerun = services.run_rerun_failed(run=run, user=request.user)
    except (InvalidInput, StateConflict) as exc:
        _report(request, exc)
        return redirect(run)
    messages.success(request, f"Rerunning {rerun.total_items} failed items.")
    return redirect(rerun)
