"""Compare runs of one dataset: a baseline and up to five other runs, each
judged against the baseline over the items both ran
(`datasets_app.comparison.compare_with_baseline`: paired means, a 95 %
interval, noise counts as unchanged).

One streamed pass over the runs' scores and latencies gives every figure; only
the page's items (ITEMS_PER_PAGE) are read with their outputs, and only they
are diffed against the baseline's output, each diff on a bounded budget.
"""

import math
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from datasets_app import access, textdiff
from datasets_app.comparison import (
    MAX_COMPARED_RUNS,
    ItemFilter,
    ItemRow,
    RunCell,
    RunComparison,
    RunRef,
    RunsComparison,
    ScoreChange,
    Verdict,
    compare_with_baseline,
)
from datasets_app.models import DatasetItem, DatasetRun, ProjectRole

from .params import page_number, valid_uuids
from .runs import format_cost, item_label, run_name

ITEMS_PER_PAGE = 50
RUN_CHOICES = 200
# A page diffs up to ITEMS_PER_PAGE × MAX_COMPARED_RUNS outputs: each on a small budget
# (textdiff falls back to lines, then to a whole replacement) and over its first characters.
DIFF_MAX_WORK = 20_000
DIFF_MAX_CHARS = 4_000
FILTERS = [(None, "All items"), *((f, f.value.capitalize()) for f in ItemFilter)]


@dataclass(frozen=True)
class Choice:
    """A run in the picker: its name, tags and what tells runs apart."""

    run: DatasetRun
    name: str

    @property
    def id(self) -> str:
        return str(self.run.pk)

    @property
    def text(self) -> str:
        tags = f" [{', '.join(self.run.tags)}]" if self.run.tags else ""
        return f"{self.name}{tags} · v{self.run.dataset_version} · {self.run.status}"


def _signed(value: float | None, decimals: int, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:+.{decimals}f}".replace("-", "−")
    return f"{text}{unit}"


def _signed_cost(value: float | None) -> str:
    if value is None:
        return "—"
    return ("+" if value >= 0 else "−") + format_cost(abs(value))


def _number(value: float | None, decimals: int, unit: str = "") -> str:
    return "—" if value is None else f"{value:.{decimals}f}{unit}"


def _clipped(value: Any) -> Any:
    if isinstance(value, str) and len(value) > DIFF_MAX_CHARS:
        return value[:DIFF_MAX_CHARS]
    return value


def _diff(base: RunCell | None, cell: RunCell) -> list[textdiff.Segment] | None:
    """The run's output against the baseline's, word by word (None when either has none)."""
    if base is None or base.error or cell.error:
        return None
    segments = textdiff.diff_values(_clipped(base.output), _clipped(cell.output), max_work=DIFF_MAX_WORK)
    return segments


def _scorer_rows(comparison: RunsComparison) -> list[dict[str, Any]]:
    """One row per scorer: the baseline's own mean, then each run against it."""
    scorer_ids = list(dict.fromkeys(s for run in comparison.runs for s in run.scorers))
    rows = []
    for scorer_id in scorer_ids:
        baseline = comparison.baseline_stats.get(scorer_id)
        cells = []
        for run in comparison.runs:
            delta = run.scorers[scorer_id]
            cells.append(
                {
                    "verdict": delta.verdict.value,
                    "mean": _number(delta.mean, 3),
                    "baseline_mean": _number(delta.baseline_mean, 3),
                    "delta": _signed(delta.delta, 3),
                    "ci": f"[{_signed(delta.ci95[0], 3)}, {_signed(delta.ci95[1], 3)}]" if delta.ci95 else "",
                    "shared": delta.shared_count,
                    "items_regressed": delta.items_regressed,
                    "items_improved": delta.items_improved,
                }
            )
        rows.append(
            {"scorer_id": scorer_id, "baseline_mean": _number(baseline.mean if baseline else None, 3), "cells": cells}
        )
    return rows


def _shared_sentence(run: RunComparison) -> str:
    """ "Compared on 40 items both runs have; 10 only in the baseline"."""
    text = f"Compared on {run.shared_items} item{'s' if run.shared_items != 1 else ''} both runs have"
    only = []
    if run.only_in_baseline:
        only.append(f"{run.only_in_baseline} only in the baseline")
    if run.only_in_run:
        only.append(f"{run.only_in_run} only in this run")
    return f"{text}; {', '.join(only)}" if only else text


def _run_columns(comparison: RunsComparison) -> list[dict[str, Any]]:
    columns = []
    for run in comparison.runs:
        columns.append(
            {
                "ref": run.run,
                "name": run_name(run.run.run),
                "comparison": run,
                "shared_sentence": _shared_sentence(run),
                "latency_mean": _number(run.latency.mean, 0, " ms"),
                "latency_delta": _signed(run.latency.delta_mean, 0, " ms"),
                "latency_p50": _number(run.latency.p50, 0, " ms"),
                "latency_p50_delta": _signed(run.latency.delta_p50, 0, " ms"),
                "tokens": _number(run.usage.tokens, 0),
                "tokens_delta": _signed(run.usage.delta_tokens, 0),
                "cost": format_cost(run.usage.cost) if run.usage.cost is not None else "—",
                "cost_delta": _signed_cost(run.usage.delta_cost),
            }
        )
    return columns


def _change_state(changes: list[ScoreChange]) -> str:
    verdicts = {change.verdict for change in changes}
    if Verdict.REGRESSED in verdicts:
        return "regressed"
    if Verdict.IMPROVED in verdicts:
        return "improved"
    return ""


def _item_rows(comparison: RunsComparison) -> list[dict[str, Any]]:
    item_ids = [row.item_id for row in comparison.items]
    items = {item.pk: item for item in DatasetItem.objects.filter(pk__in=item_ids).only("id", "position")}
    baseline_id = comparison.baseline.id
    rows = []
    for row in comparison.items:
        base = row.cells.get(baseline_id)
        rows.append(
            {
                "row": row,
                "label": item_label(items.get(row.item_id), row.item_id),
                "base": base,
                "expected": base.expected_output if base else _first_expected(row),
                "cells": [_item_cell(row, run.run, base) for run in comparison.runs],
            }
        )
    return rows


def _first_expected(row: ItemRow) -> Any:
    return next((cell.expected_output for cell in row.cells.values()), None)


def _item_cell(row: ItemRow, ref: RunRef, base: RunCell | None) -> dict[str, Any] | None:
    cell = row.cells.get(ref.id)
    if cell is None:
        return None
    changes = row.changes.get(ref.id, [])
    return {
        "run_id": ref.id,
        "run_name": run_name(ref.run),
        "cell": cell,
        "changes": changes,
        "state": _change_state(changes),
        "diff": _diff(base, cell),
    }


def _curation_forms(dataset: Any, runs: list[DatasetRun]) -> list[dict[str, Any]]:
    """One "Add to dataset" form per compared run, for an editor (none for a viewer):
    the items' checkboxes name the form of their run's column."""
    role = getattr(dataset, "user_role", None)
    if role is None or not ProjectRole(role).allows(ProjectRole.EDITOR):
        return []
    forms = []
    for run in runs:
        run.user_role = role  # type: ignore[attr-defined]  # the tag's role check, without a query per run
        run.dataset = dataset  # the same row, already read
        forms.append({"run": run, "form_id": f"add-from-{run.pk}", "title": run_name(run)})
    return forms


def _selected(request: HttpRequest, dataset_runs: Any) -> tuple[list[DatasetRun], list[str]]:
    """The runs asked for (baseline first), of this dataset, at most 1 + MAX_COMPARED_RUNS;
    and what to tell the visitor about the rest."""
    values = [value for value in request.GET.getlist("runs") if value]
    requested = list(dict.fromkeys(valid_uuids(values)))
    runs_by_id = {str(run.pk): run for run in dataset_runs.filter(pk__in=requested)}
    notes = []
    if len(runs_by_id) < len(set(values)):
        notes.append("Some of the chosen runs do not belong to this dataset; they were left out.")
    selected = [runs_by_id[value] for value in requested if value in runs_by_id]
    if len(selected) > 1 + MAX_COMPARED_RUNS:
        notes.append(f"A baseline and at most {MAX_COMPARED_RUNS} runs are compared; the rest were left out.")
        selected = selected[: 1 + MAX_COMPARED_RUNS]
    return selected, notes


@require_GET
def run_compare(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    dataset = access.dataset_for(request.user, dataset_id)
    choices = [Choice(run, run_name(run)) for run in dataset.runs.order_by("-created_at", "-id")[:RUN_CHOICES]]
    selected, notes = _selected(request, DatasetRun.objects.filter(dataset=dataset))
    for note in notes:
        messages.error(request, note)
    shown = request.GET.get("show", "")
    item_filter = ItemFilter(shown) if shown in set(ItemFilter) else None
    page = page_number(request.GET.get("page"))
    context: dict[str, Any] = {
        "dataset": dataset,
        "choices": choices,
        "selected_ids": [str(run.pk) for run in selected],
        # What each "compared run" select shows chosen.
        "slots": [str(run.pk) for run in selected[1:]] + [""] * (MAX_COMPARED_RUNS - len(selected[1:])),
        "item_filter": item_filter.value if item_filter else "",
        "comparison": None,
    }
    if len(selected) >= 2:
        baseline, others = selected[0], selected[1:]

        def compare(page: int) -> RunsComparison:
            return compare_with_baseline(
                baseline=baseline,
                runs=others,
                item_filter=item_filter,
                offset=(page - 1) * ITEMS_PER_PAGE,
                limit=ITEMS_PER_PAGE,
            )

        comparison = compare(page)
        page_count = max(1, math.ceil(comparison.matching_items / ITEMS_PER_PAGE))
        if page > page_count:
            page = page_count
            comparison = compare(page)
        context |= {
            "comparison": comparison,
            "curation": _curation_forms(dataset, selected),
            "baseline_name": run_name(baseline),
            "columns": _run_columns(comparison),
            "scorer_rows": _scorer_rows(comparison),
            "item_rows": _item_rows(comparison),
            "filters": [
                {
                    "value": value.value if value else "",
                    "label": label,
                    "count": {
                        None: comparison.item_total,
                        ItemFilter.REGRESSED: comparison.items_regressed,
                        ItemFilter.IMPROVED: comparison.items_improved,
                        ItemFilter.CHANGED: comparison.items_changed,
                    }[value],
                }
                for value, label in FILTERS
            ],
            "page": page,
            "page_count": page_count,
            "first_item": (page - 1) * ITEMS_PER_PAGE + 1 if comparison.items else 0,
            "last_item": (page - 1) * ITEMS_PER_PAGE + len(comparison.items),
        }
    return render(request, "compare/compare.html", context)
