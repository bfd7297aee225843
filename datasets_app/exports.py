"""Stream items and run results out as CSV or JSON Lines.

Rows are read with `.iterator()` and written as they are read, so an export
of any size holds one chunk of rows in memory. In CSV, JSON values are
written as JSON text except plain strings, which are written as they are
(so that a CSV export imports back unchanged through the CSV importer, formula
cells aside).

CSV cells that a spreadsheet would run as a formula are neutralised (OWASP's
CSV injection guidance): see `neutralise_formula`. A string that starts with
one of those characters therefore exports with a leading `'`; the JSON Lines
export writes every value exactly as stored.
"""

import csv
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse

from .models import Dataset, DatasetItemVersion, DatasetRun

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
ITEM_COLUMNS = ["id", "input", "expectedOutput", "context", "version", "createdAt"]
RESULT_COLUMNS = [
    "runName",
    "runTags",
    "itemId",
    "repetition",
    "input",
    "output",
    "expectedOutput",
    "error",
    "latency",
    "retryCount",
    "traceId",
    "scores",
]


class _Echo:
    """A file-like object whose write() hands the line back to csv.writer's caller."""

    def write(self, value: str) -> str:
        return value


# What a spreadsheet starts a formula (or a DDE call) with: OWASP's list.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number as JSON writes one (`-1`, `-1.5`, `-2e-05`). A spreadsheet reads such a
# cell as that number, never as a formula, so a negative number is left readable rather
# than turned into the text `'-1.5`. OWASP says to prefix every cell that starts with `-`;
# the exception is safe because the whole cell must match (anchored, no trailing newline
# allowed by \Z): `-1+1`, `-1;=cmd` or `-2+3+cmd|' /C calc'!A0` are not plain numbers
# and get the quote. `+1` gets it too (`+` is not how JSON writes a number).
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


def neutralise_formula(text: str) -> str:
    """The cell text with a leading `'` when a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, allow_nan=False)
    return neutralise_formula(text)


def _csv_lines(columns: list[str], rows: Iterable[dict]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for row in rows:
        yield writer.writerow([_csv_cell(row.get(column)) for column in columns])


def _jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        # Stored JSON passed the gate; allow_nan=False keeps anything else from being written as JSON.
        yield json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"


def _stream(rows: Iterable[dict], columns: list[str], fmt: str, filename: str) -> StreamingHttpResponse:
    if fmt not in FORMATS:
        raise Http404(f"Unknown export format {fmt!r}")
    lines = _csv_lines(columns, rows) if fmt == "csv" else _jsonl_lines(rows)
    response = StreamingHttpResponse(lines, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-")[:60] or "dataset"


def item_rows(versions: QuerySet[DatasetItemVersion]) -> Iterator[dict[str, Any]]:
    for version in versions.iterator(chunk_size=1000):
        snapshot = version.snapshot
        yield {
            "id": str(version.item_id),
            "input": snapshot.get("input"),
            "expectedOutput": snapshot.get("expectedOutput"),
            "context": snapshot.get("context"),
            "version": version.version_number,
            "createdAt": version.created_at.isoformat(),
        }


def export_items(
    dataset: Dataset, fmt: str, *, version: int | None = None, item_ids: list | None = None
) -> StreamingHttpResponse:
    """The dataset's items (at `version`, default current; only `item_ids` if given) as a download."""
    version = dataset.version if version is None else version
    versions = (
        DatasetItemVersion.objects.at_version(dataset, version)
        .order_by("item__created_at", "item_id")
        .only("item_id", "snapshot", "version_number", "created_at")
    )
    if item_ids is not None:
        versions = versions.filter(item_id__in=list(item_ids))
    suffix = f"-v{version}" if item_ids is None else f"-v{version}-selected"
    return _stream(item_rows(versions), ITEM_COLUMNS, fmt, f"{_slug(dataset.name)}{suffix}")


def result_rows(run: DatasetRun) -> Iterator[dict]:
    """The run's results in dataset order, each naming its run (exports of several
    runs can be put side by side)."""
    for result in run.results.in_dataset_order().iterator(chunk_size=1000):
        yield {
            "runName": run.name,
            "runTags": run.tags,
            "itemId": str(result.item_id),
            "repetition": result.repetition,
            "input": result.input,
            "output": result.output,
            "expectedOutput": result.expected_output,
            "error": result.error,
            "latency": result.latency,
            "retryCount": result.retry_count,
            "traceId": result.trace_id,
            "scores": result.scores,
        }


def export_run_results(run: DatasetRun, fmt: str) -> StreamingHttpResponse:
    """Every result of the run, in dataset order, as a CSV or JSONL download."""
    filename = f"{_slug(run.dataset.name)}-{_slug(run.name)}-results"
    return _stream(result_rows(run), RESULT_COLUMNS, fmt, filename)
