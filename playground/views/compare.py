"""Compare runs of one dataset: the first run chosen is the baseline, every
other one is compared against it with datasets_app.comparison.compare_runs."""

import math
import uuid

from django.contrib import messages
from django.shortcuts import get_object_or_404, render

from datasets_app.comparison import compare_runs
from datasets_app.models import Dataset, DatasetRun, DatasetRunResult

ITEMS_PER_PAGE = 50
# Per-item regressions are counted over at most this many items per comparison.
ITEM_LIMIT = 10_000
RUN_CHOICES = 200


def _item_delta(item: dict) -> dict:
    """Per scorer: the B-minus-A difference of one item's scores, and its direction."""
    cells = []
    regressed = improved = False
    for scorer_id in sorted(set(item["scoresA"]) | set(item["scoresB"])):
        a, b = item["scoresA"].get(scorer_id), item["scoresB"].get(scorer_id)
        delta = b - a if a is not None and b is not None else None
        change = ""
        if delta is not None and delta < -1e-9:
            change, regressed = "regressed", True
        elif delta is not None and delta > 1e-9:
            change, improved = "improved", True
        cells.append({"scorer": scorer_id, "a": a, "b": b, "delta": delta, "change": change})
    return {**item, "cells": cells, "regressed": regressed, "improved": improved}


def _outputs(run_id, item_ids) -> dict:
    """First-repetition output and error of each item on the page."""
    rows = (
        DatasetRunResult.objects.filter(run_id=run_id, item_id__in=item_ids)
        .order_by("item_id", "repetition")
        .values_list("item_id", "output", "error", "id")
    )
    outputs: dict = {}
    for item_id, output, error, result_id in rows:
        outputs.setdefault(str(item_id), {"output": output, "error": error, "result_id": result_id})
    return outputs


def _comparison(run_a: DatasetRun, run_b: DatasetRun, *, only_regressions: bool, page: int) -> dict:
    answer = compare_runs(run_a=run_a, run_b=run_b, per_page=ITEM_LIMIT)
    items = [_item_delta(item) for item in answer["items"]]
    regressed_count = sum(item["regressed"] for item in items)
    improved_count = sum(item["improved"] for item in items)
    shown = [item for item in items if item["regressed"]] if only_regressions else items
    page_count = max(1, math.ceil(len(shown) / ITEMS_PER_PAGE))
    page = min(page, page_count)
    page_items = shown[(page - 1) * ITEMS_PER_PAGE : page * ITEMS_PER_PAGE]
    ids = [item["itemId"] for item in page_items]
    outputs_a, outputs_b = _outputs(run_a.pk, ids), _outputs(run_b.pk, ids)
    for item in page_items:
        item["a"] = outputs_a.get(item["itemId"])
        item["b"] = outputs_b.get(item["itemId"])
    scorers = [
        {"id": scorer_id, **stats, "improved": stats["delta"] is not None and stats["delta"] > 1e-9 and not stats["regressed"]}
        for scorer_id, stats in answer["scorers"].items()
    ]
    return {
        "run_a": run_a,
        "run_b": run_b,
        "answer": answer,
        "scorers": scorers,
        "regressed_scorers": sum(s["regressed"] for s in scorers),
        "improved_scorers": sum(s["improved"] for s in scorers),
        "items": page_items,
        "item_total": answer["pagination"]["total"],
        "items_truncated": answer["pagination"]["hasMore"],
        "shown_count": len(shown),
        "regressed_count": regressed_count,
        "improved_count": improved_count,
        "page": page,
        "page_count": page_count,
    }


def run_compare(request, dataset_id):
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    choices = list(dataset.runs.order_by("-created_at", "-id")[:RUN_CHOICES])
    values = [value for value in request.GET.getlist("runs") if value]
    requested = list(dict.fromkeys(_uuids(values)))
    runs_by_id = {str(run.pk): run for run in DatasetRun.objects.filter(dataset=dataset, pk__in=requested)}
    if len(runs_by_id) < len(set(values)):
        messages.error(request, "Some of the chosen runs do not belong to this dataset; they were left out.")
    selected = [runs_by_id[value] for value in requested if value in runs_by_id]
    only_regressions = request.GET.get("only") == "regressions"
    try:
        page = max(1, int(request.GET.get("page", 1)))
    except ValueError:
        page = 1
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
        },
    )


def _uuids(values: list[str]) -> list[str]:
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            pass
    return valid
