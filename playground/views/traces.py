"""The trace page: one item execution's spans as a waterfall."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from datasets_app import access
from datasets_app.models import DatasetRunResult

# Python parses at most microseconds; OpenTelemetry times may carry nanoseconds.
_EXTRA_FRACTION = re.compile(r"(\.\d{6})\d+")
MIN_BAR_PERCENT = 0.5


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(_EXTRA_FRACTION.sub(r"\1", value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def span_status(status: Any) -> str:
    """The span's stored status ("ok", "error" or "unset", see runs/tracing.py);
    "unset" for anything else."""
    return status if status in {"ok", "error"} else "unset"


@dataclass
class SpanRow:
    span: dict
    depth: int
    status: str
    duration_ms: float | None
    offset: str  # percentages formatted here: the template only places them
    width: str


def waterfall(spans: list[Any]) -> tuple[list[SpanRow], float]:
    """Spans in tree order (children under their parent, siblings by start time)
    with bar offsets and widths as percentages of the whole trace."""
    spans = [s for s in spans if isinstance(s, dict)]
    times = {id(s): (parse_time(s.get("startTime")), parse_time(s.get("endTime"))) for s in spans}
    starts = [start for start, _ in times.values() if start]
    ends = [moment for start, end in times.values() if (moment := end or start)]
    trace_start = min(starts) if starts else None
    total_ms = (max(ends) - trace_start).total_seconds() * 1000 if trace_start and ends else 0.0

    ids = {s.get("spanId") for s in spans}
    children: dict = {}
    roots = []
    for span in spans:
        parent = span.get("parentSpanId")
        if parent and parent in ids and parent != span.get("spanId"):
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)

    def start_key(span: dict[str, Any]) -> tuple[bool, datetime]:
        start = times[id(span)][0]
        return (start is None, start or datetime.min.replace(tzinfo=UTC))

    rows: list[SpanRow] = []
    seen: set[int] = set()

    def visit(span: dict[str, Any], depth: int) -> None:
        if id(span) in seen:  # a cycle in parent ids: show each span once
            return
        seen.add(id(span))
        start, end = times[id(span)]
        duration = (end - start).total_seconds() * 1000 if start and end else None
        offset = width = 0.0
        if start and trace_start and total_ms > 0:
            offset = (start - trace_start).total_seconds() * 1000 / total_ms * 100
            width = (duration or 0) / total_ms * 100
        elif start:
            width = 100.0
        width = max(MIN_BAR_PERCENT, min(width, 100 - offset))
        rows.append(SpanRow(span, depth, span_status(span.get("status")), duration, f"{offset:.3f}", f"{width:.3f}"))
        for child in sorted(children.get(span.get("spanId"), []), key=start_key):
            visit(child, depth + 1)

    for root in sorted(roots, key=start_key):
        visit(root, 0)
    for span in spans:  # spans only reachable through a cycle
        visit(span, 0)
    return rows, total_ms


@require_GET
def trace_detail(request: HttpRequest, trace_id: str) -> HttpResponse:
    trace = access.trace_for(request.user, trace_id)
    rows, total_ms = waterfall(trace.spans if isinstance(trace.spans, list) else [])
    run_url = result_url = review_url = None
    result = None
    if trace.run is not None:
        run_url = trace.run.get_absolute_url()
        if trace.result_id:
            result = (
                DatasetRunResult.objects.filter(pk=trace.result_id, run_id=trace.run_id).only("id", "run_id").first()
            )
        if result is not None:
            result_url = reverse("result-detail", args=[trace.run.dataset_id, trace.run_id, result.pk])
            review_url = (
                f"{reverse('run-review', args=[trace.run.dataset_id, trace.run_id])}?filter=all&result={result.pk}"
            )
    return render(
        request,
        "traces/detail.html",
        {
            "trace": trace,
            "rows": rows,
            "total_ms": total_ms,
            "run": trace.run,
            "result": result,
            "run_url": run_url,
            "result_url": result_url,
            "review_url": review_url,
        },
    )
