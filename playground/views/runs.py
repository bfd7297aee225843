"""Run pages: the live run detail (and its polled fragment), result detail,
the run's name / description / tags form, the Runs tab's list and trends, and
the start / cancel / rerun-failed actions.

A poll reads the counters and per-scorer, latency and usage figures from the
run row (`datasets_app.runs.summary`) and one indexed page of results: in
dataset order (item id, repetition: the unique index serves it) unless the
visitor sorts by score or latency. Only the page's rows join their item (for
its "#position"); nothing is ordered by a joined column.
"""

import hashlib
import math
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self
from uuid import UUID

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Count, Max, Prefetch, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from datasets_app import access, annotations, services, textdiff
from datasets_app.api.throttles import RunStartThrottle
from datasets_app.exceptions import InvalidInput, StateConflict
from datasets_app.models import (
    Annotation,
    Dataset,
    DatasetItem,
    DatasetItemVersion,
    DatasetRun,
    DatasetRunResult,
    DatasetRunResultQuerySet,
    ProjectRole,
    Trace,
)
from datasets_app.runs import summary
from datasets_app.runs.tracing import trace_link
from playground import charts
from playground.forms import RunStartForm

from .params import finite_float, page_number

RESULTS_PER_PAGE = 50
PAGE_SIZES = (25, 50, 100, 200)
# Extra columns a visitor may add to the results table (?cols=input.question,output).
MAX_EXTRA_COLUMNS = 4
MAX_COLUMN_PATH = 3  # input.a.b.c at most
MAX_COLUMN_KEY = 64
COLUMN_SOURCES = {"input": "input", "expected": "expected_output", "output": "output"}
# The item fields the results table never shows (only its position): left out of the page's join.
ITEM_FIELDS_NOT_SHOWN = ("item__input", "item__expected_output", "item__context")
# The Runs tab: runs per page and how many of the latest runs the trends cover.
RUNS_PER_PAGE = 20
TREND_RUNS = 20
TAG_SCAN_RUNS = 500  # the tags offered as filters come from this many latest runs
MAX_TAG_LENGTH = services.MAX_TAG_LENGTH


def run_name(run: DatasetRun) -> str:
    """What pages call a run: its name, else what ran and when."""
    return run.name or f"{run.target_id} · {run.created_at:%Y-%m-%d %H:%M}"


def item_label(item: DatasetItem | None, item_id: UUID | None = None) -> str:
    """An item as pages name it: its place in the dataset ("#12"); the short id
    for an item from before positions were numbered."""
    if item is not None and item.position:
        return f"#{item.position}"
    return str(item_id or (item.pk if item else ""))[:8]


def trace_label(trace_id: str, span_count: int | None = None) -> str:
    """A trace link's text: what it opens, not just "Trace". Trace ids are
    time-ordered (their head is the time), so the short form is their tail."""
    if span_count:
        return f"View trace ({span_count} span{'s' if span_count != 1 else ''})"
    return f"Trace …{trace_id[-8:]}"


@dataclass(frozen=True)
class Column:
    """An extra results column: one field of the input, expected output or output,
    by a path of keys (`input.question`), or the whole value (`output`)."""

    spec: str
    source: str  # "input", "expected" or "output"
    path: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> "Column | None":
        source, _, rest = spec.partition(".")
        if source not in COLUMN_SOURCES:
            return None
        path = tuple(rest.split(".")) if rest else ()
        if len(path) > MAX_COLUMN_PATH or any(not key or len(key) > MAX_COLUMN_KEY for key in path):
            return None
        return cls(spec, source, path)

    @property
    def label(self) -> str:
        return ".".join((self.source, *self.path))

    def value_of(self, result: DatasetRunResult) -> Any:
        value = getattr(result, COLUMN_SOURCES[self.source])
        for key in self.path:
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return None
        return value


def parse_columns(values: list[str]) -> tuple[tuple[Column, ...], int]:
    """The extra columns asked for (comma-separated, repeated or both), valid and
    distinct, at most MAX_EXTRA_COLUMNS; and how many were left out."""
    specs = [spec.strip() for value in values for spec in value.split(",") if spec.strip()]
    columns: dict[str, Column] = {}
    left_out = 0
    for spec in specs:
        column = Column.parse(spec)
        if column is None or column.spec in columns:
            left_out += column is None
            continue
        if len(columns) == MAX_EXTRA_COLUMNS:
            left_out += 1
            continue
        columns[column.spec] = column
    return tuple(columns.values()), left_out


@dataclass(frozen=True)
class ResultFilters:
    """What the visitor asked the results table for through GET: filters, sort,
    page, page size, extra columns and the pass threshold of the score cards."""

    errors_only: bool = False
    search: str = ""
    below: float | None = None
    scorer: str = ""
    sort: str = ""
    page: int = 1
    page_size: int = RESULTS_PER_PAGE
    columns: tuple[Column, ...] = ()
    columns_left_out: int = 0
    threshold: float = summary.DEFAULT_PASS_THRESHOLD

    @classmethod
    def from_query(cls, query: QueryDict, run: DatasetRun, review_names: Sequence[str] = ()) -> Self:
        scorer = query.get("scorer", "")
        if scorer not in run.scorer_ids:
            scorer = run.scorer_ids[0] if run.scorer_ids else ""
        sort = query.get("sort", "")
        if sort not in _sort_choices(run, review_names):
            sort = ""
        threshold = finite_float(query.get("threshold"))
        size = page_number(query.get("size"))
        columns, left_out = parse_columns(query.getlist("cols"))
        return cls(
            errors_only=query.get("errors") in {"1", "on", "true"},
            search=query.get("q", "").strip(),
            below=finite_float(query.get("below")) if scorer else None,
            scorer=scorer,
            sort=sort,
            page=page_number(query.get("page")),
            page_size=size if size in PAGE_SIZES else RESULTS_PER_PAGE,
            columns=columns,
            columns_left_out=left_out,
            threshold=summary.DEFAULT_PASS_THRESHOLD if threshold is None else threshold,
        )

    @property
    def is_filtered(self) -> bool:
        return self.errors_only or bool(self.search) or self.below is not None

    @property
    def columns_text(self) -> str:
        return ",".join(column.spec for column in self.columns)

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
        review_name = annotations.name_of(key)
        if review_name is not None:
            return results.ordered_by_annotation(review_name, descending=descending)
        return results.in_dataset_order()


def _sort_choices(run: DatasetRun, review_names: Sequence[str] = ()) -> set[str]:
    keys = ["latency", *(f"score:{s}" for s in run.scorer_ids), *(annotations.key_of(n) for n in review_names)]
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


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "—"
    if cost == 0:
        return "0"
    if cost >= 1:
        return f"{cost:.2f}"
    # Two significant digits at least, in plain decimals: 0.0016, 0.000039.
    return f"{cost:.{max(4, 1 - math.floor(math.log10(abs(cost))))}f}"


def live_status(run: DatasetRun) -> str:
    """What the page's live region says after each poll: "37 of 200 done"."""
    text = f"{run.done_count} of {run.total_items} done"
    if run.failed_count:
        text += f", {run.failed_count} failed"
    return f"Run {run.status}: {text}." if run.is_terminal else f"{text}."


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


def _kept_params(query: QueryDict, *dropped: str) -> list[tuple[str, str]]:
    """The query's parameters but `dropped`, as hidden fields of a GET form that changes those."""
    return [(key, value) for key, values in query.lists() if key not in dropped for value in values]


def _review_names(run: DatasetRun, stats: dict[str, annotations.AnnotationStats]) -> list[str]:
    """The dataset's annotation names, then any other the run's results carry (a name removed since)."""
    return list(dict.fromkeys([*annotations.names_of(run.dataset), *stats]))


def _label_counts(labels: dict[str, int] | Counter[str]) -> str:
    """ "good 8 · bad 3 · unsure 1"."""
    return " · ".join(f"{label} {count}" for label, count in labels.items())


def _review_cards(names: list[str], stats: dict[str, annotations.AnnotationStats]) -> list[dict[str, Any]]:
    return [
        {"name": name, "stats": stats.get(name), "labels": _label_counts(stats[name].labels) if name in stats else ""}
        for name in names
    ]


def _review_cells(result: DatasetRunResult, names: list[str]) -> list[dict[str, Any]]:
    """Per annotation name, the result's reviews: their mean score and their labels
    ("0.8 good"; a label given twice "good ×2"), from the prefetched annotations."""
    by_name: defaultdict[str, list[Annotation]] = defaultdict(list)
    for annotation in result.annotations.all():
        by_name[annotation.name].append(annotation)
    cells = []
    for name in names:
        found = by_name.get(name, [])
        scores = [a.score for a in found if a.score is not None]
        labels = Counter(a.label for a in found if a.label)
        cells.append(
            {
                "name": name,
                "count": len(found),
                "score": math.fsum(scores) / len(scores) if scores else None,
                "labels": " · ".join(label if n == 1 else f"{label} ×{n}" for label, n in labels.most_common()),
            }
        )
    return cells


def _reviews_moment(run: DatasetRun) -> str:
    """What changes whenever a review of the run is saved or deleted: their count and latest save."""
    row = Annotation.objects.filter(run_id=run.pk).aggregate(n=Count("id"), last=Max("updated_at"))
    return f"{row['n']}:{row['last'].timestamp() if row['last'] else 0}"


def _results_context(request: HttpRequest, run: DatasetRun) -> dict[str, Any]:
    review_stats = annotations.run_stats([run.pk]).get(run.pk, {})
    review_names = _review_names(run, review_stats)
    filters = ResultFilters.from_query(request.GET, run, review_names)
    results = filters.apply(DatasetRunResult.objects.filter(run=run))
    # Unfiltered, the run row counts the results (they move in one transaction): no COUNT(*) per poll.
    total = results.count() if filters.is_filtered else run.done_count
    size = filters.page_size
    page_count = max(1, math.ceil(total / size))
    page = min(filters.page, page_count)
    offset = (page - 1) * size
    fragment_url = reverse("run-results-fragment", args=[run.dataset_id, run.id])
    query = request.GET.urlencode()
    usage = summary.usage_summary(run)
    context = {
        "dataset": run.dataset,
        "run": run,
        "run_name": run_name(run),
        "filters": filters,
        "score_cards": _score_cards(run, filters.threshold),
        "latency_card": _latency_card(run),
        "usage": usage,
        "usage_cost": format_cost(usage.cost) if usage else "",
        "total": total,
        "page": page,
        "page_count": page_count,
        "page_sizes": PAGE_SIZES,
        "jump_params": _kept_params(request.GET, "page"),
        "size_params": _kept_params(request.GET, "page", "size"),
        "first_row": offset + 1 if total else 0,
        "last_row": min(offset + size, total),
        "elapsed": format_duration(run.elapsed),
        "live_status": live_status(run),
        "poll_url": f"{fragment_url}?{query}" if query else fragment_url,
        "run_url": run.get_absolute_url(),
        "export_links": _export_links(run),
        "score_columns": [
            _sort_link(request, run, filters, f"score:{s}", s, slot=f"score-{n}") for n, s in enumerate(run.scorer_ids)
        ],
        "latency_column": _sort_link(request, run, filters, "latency", "Latency (ms)", slot="latency"),
        "review_names": review_names,
        "review_cards": _review_cards(review_names, review_stats),
        "review_columns": [
            _sort_link(request, run, filters, annotations.key_of(name), f"{name} (review)", slot=f"review-{n}")
            for n, name in enumerate(review_names)
        ],
        # Checkboxes for "Add to dataset": editors only (the form is theirs), once the run is
        # over (a live table is swapped every 2 s, which would drop what was checked).
        "selectable": run.is_terminal and _can_edit(run),
        "max_extra_columns": MAX_EXTRA_COLUMNS,
    }
    if total:
        context["results_table"] = cached_results_table(request, run, context, results[offset : offset + size])
    return context


TABLE_CACHE_SECONDS = 1
# What the results table shows of each result's annotations (one query per page).
REVIEWS_SHOWN = Annotation.objects.only("id", "result_id", "name", "score", "label").order_by("created_at", "id")


def cached_results_table(
    request: HttpRequest, run: DatasetRun, context: dict[str, Any], page_results: DatasetRunResultQuerySet
) -> str:
    """The results table and pager, rendered once per page of a run per second.

    Everyone watching a run polls the same first page: under 50 watchers the
    table (its query and 50 rows of JSON previews) was most of the server's
    work. The table shows nothing that depends on who asks (no CSRF token, no
    role), and a live run's table may be a second old at most; a finished run's
    is kept until its counters change (they no longer do).
    """
    # A finished run's table changes with its reviews (an active run's is a second old at most).
    moment = (
        f"{run.status}:{run.done_count}:{_reviews_moment(run)}"
        if run.is_terminal
        else str(int(time.time() // TABLE_CACHE_SECONDS))
    )
    # The annotation columns and whether rows can be selected (editor or not: two variants, no one's own).
    variant = "\x1f".join([*context["review_names"], "select" if context["selectable"] else ""])
    digest = hashlib.sha256(f"{request.GET.urlencode()}\x1e{variant}".encode()).hexdigest()
    key = f"run-table:{run.pk}:{moment}:{digest}"

    def render_table() -> str:
        filters = context["filters"]
        rows = [
            {
                "result": result,
                "label": item_label(result.item, result.item_id),
                "extra": [column.value_of(result) for column in filters.columns],
                "scores": _score_cells(result, run.scorer_ids, filters.threshold),
                "reviews": _review_cells(result, context["review_names"]),
                "trace_url": trace_link(result.trace_id),
                "trace_label": trace_label(result.trace_id) if result.trace_id else "",
            }
            for result in page_results.select_related("item")
            .defer(*ITEM_FIELDS_NOT_SHOWN)
            .prefetch_related(Prefetch("annotations", queryset=REVIEWS_SHOWN))
        ]
        return render_to_string("runs/detail.html#results-table", {**context, "rows": rows}, request=request)

    html = cache.get(key)
    if html is None:
        html = render_table()
        cache.set(key, html, TABLE_CACHE_SECONDS * 2 if not run.is_terminal else 3600)
    return mark_safe(html)


def _sort_link(
    request: HttpRequest, run: DatasetRun, filters: ResultFilters, key: str, label: str, *, slot: str
) -> dict[str, str]:
    """A sortable column header: ascending first, a second click flips it."""
    state = "ascending" if filters.sort == key else "descending" if filters.sort == f"-{key}" else ""
    params = request.GET.copy()
    params.pop("page", None)
    params["sort"] = f"-{key}" if state == "ascending" else key
    return {"label": label, "state": state, "slot": slot, "url": f"{run.get_absolute_url()}?{params.urlencode()}"}


# ---- the run's name, description and tags ----------------------------------------------


class RunEditForm(forms.Form):
    """What people call a run; `services.run_update` checks and stores it."""

    name = forms.CharField(label="Name", max_length=255)
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(
        label="Tags",
        required=False,
        max_length=services.MAX_TAGS * (MAX_TAG_LENGTH + 2),
        help_text="Separated by commas, e.g. baseline, prompt-v2",
    )

    @classmethod
    def for_run(cls, run: DatasetRun, data: QueryDict | None = None) -> "RunEditForm":
        initial = {"name": run_name(run), "description": run.description, "tags": ", ".join(run.tags or [])}
        return cls(data, initial=initial, auto_id="run-edit-%s")

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]

    def save(self, run: DatasetRun) -> DatasetRun | None:
        """Store the change; None (with the service's reasons on the fields) when refused."""
        if not self.is_valid():
            return None
        try:
            return services.run_update(run=run, **self.cleaned_data)
        except InvalidInput as exc:
            for key, errors in exc.errors.items():
                for error in errors:
                    self.add_error(key if key in self.fields else None, error)
            return None


def _can_edit(run: DatasetRun) -> bool:
    role = getattr(run, "user_role", None)
    return role is not None and ProjectRole(role).allows(ProjectRole.EDITOR)


# ---- pages ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def run_detail(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    """The run page; a POST is its name / description / tags form (editors only)."""
    if request.method == "POST":
        run = _get_run(request, dataset_id, run_id, needs=access.EDITOR)
        form = RunEditForm.for_run(run, request.POST)
        if form.save(run) is not None:
            messages.success(request, f"Saved run “{run_name(run)}”.")
            return redirect(run)
        context = (
            _results_context(request, run) | _review_links(run, request.user) | {"can_edit": True, "edit_form": form}
        )
        return render(request, "runs/detail.html", context, status=400)
    run = _get_run(request, dataset_id, run_id)
    can_edit = _can_edit(run)
    context = (
        _results_context(request, run)
        | _review_links(run, request.user)
        | {
            "can_edit": can_edit,
            "edit_form": RunEditForm.for_run(run) if can_edit else None,
        }
    )
    return render(request, "runs/detail.html", context)


def _review_links(run: DatasetRun, user: Any) -> dict[str, Any]:
    """The header's "Review results" links: the queue, and how many results the
    user has left to review under the dataset's first annotation name (what the
    queue's "not yet reviewed" filter shows them)."""
    url = reverse("run-review", args=[run.dataset_id, run.pk])
    names = annotations.names_of(run.dataset)
    unreviewed = 0
    if run.done_count:
        mine = annotations.reviewed_count(run.pk, name=names[0] if names else None, author=user)
        unreviewed = max(0, run.done_count - mine)
    return {"review_url": url, "unreviewed_url": f"{url}?filter=unreviewed", "unreviewed": unreviewed}


@require_GET
def run_results_fragment(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    """The polled results section alone (and the live region's new text, swapped
    out of band); without hx-get once the run is terminal."""
    run = _get_run(request, dataset_id, run_id)
    context = _results_context(request, run)
    if run.is_terminal:  # the last poll also refreshes the header's exports and review links
        context |= _review_links(run, request.user)
    return render(request, "runs/detail.html#results-fragment", context)


def _neighbours(result: DatasetRunResult) -> tuple[DatasetRunResult | None, DatasetRunResult | None]:
    """The results before and after this one in the run page's default order
    (dataset order: item id, then repetition), each one indexed lookup."""
    in_run = (
        DatasetRunResult.objects.filter(run_id=result.run_id)
        .select_related("item")
        .only("id", "run_id", "item_id", "repetition", "item__position")
    )
    before = Q(item_id__lt=result.item_id) | Q(item_id=result.item_id, repetition__lt=result.repetition)
    after = Q(item_id__gt=result.item_id) | Q(item_id=result.item_id, repetition__gt=result.repetition)
    previous = in_run.filter(before).order_by("-item_id", "-repetition").first()
    following = in_run.filter(after).in_dataset_order().first()
    return previous, following


def _item_context_as_run(result: DatasetRunResult) -> Any:
    """The item's context as this result's item version had it."""
    snapshot = (
        DatasetItemVersion.objects.filter(item_id=result.item_id, version_number=result.item_version)
        .values_list("snapshot", flat=True)
        .first()
    )
    if isinstance(snapshot, dict):
        return snapshot.get("context")
    return result.item.context


def _span_count(trace_id: str | None) -> int | None:
    if not trace_id:
        return None
    spans = Trace.objects.filter(pk=trace_id).values_list("spans", flat=True).first()
    return len(spans) if isinstance(spans, list) else None


@require_GET
def result_detail(request: HttpRequest, dataset_id: UUID, run_id: UUID, result_id: UUID) -> HttpResponse:
    run = _get_run(request, dataset_id, run_id)
    result = get_object_or_404(DatasetRunResult.objects.select_related("item"), pk=result_id, run=run)
    scores = [entry for entry in result.scores if isinstance(entry, dict)]
    previous, following = _neighbours(result)
    has_expected = result.expected_output is not None
    diff = textdiff.diff_values(result.expected_output, result.output) if has_expected and not result.error else []
    reviews = result.annotations.select_related("author").order_by("name", "created_at", "id")
    return render(
        request,
        "runs/result_detail.html",
        {
            "dataset": run.dataset,
            "run": run,
            "run_name": run_name(run),
            "result": result,
            "label": item_label(result.item, result.item_id),
            "scores": scores,
            "trace_url": trace_link(result.trace_id),
            "trace_label": trace_label(result.trace_id, _span_count(result.trace_id)) if result.trace_id else "",
            "usage": result.usage if isinstance(result.usage, dict) else None,
            "item_context": _item_context_as_run(result),
            "diff": diff,
            "diff_changed": any(segment.kind != textdiff.SAME for segment in diff),
            "reviews": list(reviews),
            "review_url": f"{reverse('run-review', args=[run.dataset_id, run.pk])}?filter=all&result={result.pk}",
            "previous": previous and {"result": previous, "label": item_label(previous.item, previous.item_id)},
            "next": following and {"result": following, "label": item_label(following.item, following.item_id)},
        },
    )


# ---- the Runs tab: the list (by tag) and the trends of the latest runs --------------------


def runs_tab_context(request: HttpRequest, dataset: Dataset) -> dict[str, Any]:
    """The Runs tab's list (?tag= keeps the runs with that tag, ?runs_page= pages
    it) and the trends of its latest TREND_RUNS runs."""
    tag = request.GET.get("tag", "").strip()[:MAX_TAG_LENGTH]
    runs = dataset.runs.all()
    if tag:
        runs = runs.with_tag(tag)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("runs_page"))
    latest = list(runs[:TREND_RUNS])  # whichever page is shown, the trends are of the latest runs
    tags = dict.fromkeys(
        t
        for run_tags in dataset.runs.values_list("tags", flat=True)[:TAG_SCAN_RUNS]
        if isinstance(run_tags, list)
        for t in run_tags
        if isinstance(t, str)
    )
    return {
        "runs_page": page,
        "runs": [{"run": run, "name": run_name(run), "scorers": summary.scorer_stats(run)} for run in page],
        "runs_active": any(run.status in DatasetRun.ACTIVE_STATUSES for run in page),
        "tag": tag,
        "tags": sorted(tags),
        "trends": run_trends(list(reversed(latest))),
    }


def run_trends(runs: list[DatasetRun]) -> dict[str, Any]:
    """Per run (oldest first) each scorer's mean and the latency p50 / p95, and
    their charts; runs without results are left out."""
    points = [run for run in runs if run.done_count]
    scorer_ids = list(dict.fromkeys(s for run in points for s in run.scorer_ids))
    stats = {run.pk: {s.scorer_id: s for s in summary.scorer_stats(run)} for run in points}
    latencies = {run.pk: summary.latency_summary(run) for run in points}
    trend_runs = [
        charts.TrendRun(label=run_name(run), url=run.get_absolute_url(), when=f"{run.created_at:%Y-%m-%d %H:%M}")
        for run in points
    ]
    score_series = [
        charts.Series(
            name=scorer_id,
            values=[_mean(stats[run.pk].get(scorer_id)) for run in points],
        )
        for scorer_id in scorer_ids
    ]
    latency_series = [
        charts.Series(name="p50", values=[latencies[run.pk].p50 for run in points]),
        charts.Series(name="p95", values=[latencies[run.pk].p95 for run in points]),
    ]
    return {
        "count": len(points),
        "runs": trend_runs,
        "scores": score_series,
        "latency": latency_series,
        "score_chart": charts.trend_chart(
            trend_runs, score_series, title="Mean score per run", low=0.0, high=1.0, decimals=3
        )
        if score_series
        else None,
        "latency_chart": charts.trend_chart(trend_runs, latency_series, title="Latency per run", unit=" ms"),
        "rows": [
            {
                "run": trend_run,
                "scores": [series.values[n] for series in score_series],
                "p50": latencies[run.pk].p50,
                "p95": latencies[run.pk].p95,
            }
            for n, (run, trend_run) in enumerate(zip(points, trend_runs, strict=True))
        ],
    }


def _mean(stats: summary.ScorerStats | None) -> float | None:
    return stats.mean if stats else None


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
