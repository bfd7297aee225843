"""Compare runs of one dataset: the first run chosen is the baseline, every
other one is compared against it (`datasets_app.comparison`)."""

import math
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from datasets_app import access
from datasets_app.comparison import ItemComparison, Verdict, compare_runs, first_outputs
from datasets_app.models import DatasetRun

from .params import page_number, valid_uuids

ITEMS_PER_PAGE = 50
# Items are compared one by one up to this many per comparison.
ITEM_LIMIT = 10_000
RUN_CHOICES = 200


def _comparison(run_a: DatasetRun, run_b: DatasetRun, *, only_regressions: bool, page: int) -> dict[str, Any]:
    comparison = compare_runs(run_a=run_a, run_b=run_b, limit=ITEM_LIMIT)
    items = comparison.items
    shown: list[ItemComparison] = [item for item in items if item.regressed] if only_regressions else items
    page_count = max(1, math.ceil(len(shown) / ITEMS_PER_PAGE))
    page = min(page, page_count)
    page_items = shown[(page - 1) * ITEMS_PER_PAGE : page * ITEMS_PER_PAGE]
    item_ids = [item.item_id for item in page_items]
    outputs_a, outputs_b = first_outputs(run_a, item_ids), first_outputs(run_b, item_ids)
    scorers = list(comparison.scorers.values())
    return {
        "comparison": comparison,
        "scorers": scorers,
        "regressed_scorers": sum(s.verdict is Verdict.REGRESSED for s in scorers),
        "improved_scorers": sum(s.verdict is Verdict.IMPROVED for s in scorers),
        "items": [
            {"item": item, "a": outputs_a.get(item.item_id), "b": outputs_b.get(item.item_id)} for item in page_items
        ],
        "items_truncated": comparison.item_total > len(items),
        "shown_count": len(shown),
        "regressed_count": sum(item.regressed for item in items),
        "improved_count": sum(item.improved for item in items),
        "page": page,
        "page_count": page_count,
    }


@require_GET
def run_compare(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id)
    choices = list(dataset.runs.order_by("-created_at", "-id")[:RUN_CHOICES])
    values = [value for value in request.GET.getlist("runs") if value]
    requested = list(dict.fromkeys(valid_uuids(values)))
    runs_by_id = {str(run.pk): run for run in DatasetRun.objects.filter(dataset=dataset, pk__in=requested)}
    if len(runs_by_id) < len(set(values)):
        messages.error(request, "Some of the chosen runs do not belong to this dataset; they were left out.")
    selected = [runs_by_id[value] for value in requested if value in runs_by_id]
    only_regressions = request.GET.get("only") == "regressions"
    page = page_number(request.GET.get("page"))
    comparisons = []
    if len(selected) >= 2:
        baseline = selected[0]
        comparisons = [
            _comparison(baseline, other, only_regressions=only_regressions, page=page) for other in selected[1:]
        ]
    return render(
        request,
        "compare/compare.html",
        {
            "dataset": dataset,
            "choices": choices,
            "selected": selected,
            "selected_ids": [str(run.pk) for run in selected],
            "comparisons": comparisons,
            "only_regressions": only_regressions,
            "item_limit": ITEM_LIMIT,
        },
    )
