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

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404, StreamingHttpResponse

from . import curation
from .models import Annotation, Dataset, DatasetItemVersion, DatasetRun, DatasetRunResult

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
FINETUNE_CONTENT_TYPE = FORMATS["jsonl"]
# The items table's and the exports' `?split=` value for "items in no split" (a split name
# is trimmed, so it could be written " ", but a word is clearer in an address).
NO_SPLIT = "__none__"
ITEM_COLUMNS = ["id", "input", "expectedOutput", "context", "metadata", "split", "version", "createdAt"]
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
    "annotations",
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
            "metadata": snapshot.get("metadata"),
            "split": version.split,
            "version": version.version_number,
            "createdAt": version.created_at.isoformat(),
        }


def in_split[V: QuerySet[Any]](versions: V, split: str | None) -> V:
    """Item versions of one split: a name, `NO_SPLIT` (those in none) or None/"" (every one)."""
    if not split:
        return versions
    if split == NO_SPLIT:
        return versions.filter(split__isnull=True)
    return versions.filter(split=split)


def _split_suffix(split: str | None) -> str:
    if not split:
        return ""
    return "-no-split" if split == NO_SPLIT else f"-{_slug(split)}"


def _item_versions(
    dataset: Dataset, version: int, *, item_ids: list | None = None, split: str | None = None
) -> QuerySet[DatasetItemVersion]:
    versions = in_split(
        DatasetItemVersion.objects.at_version(dataset, version).order_by("item__created_at", "item_id"), split
    )
    if item_ids is not None:
        versions = versions.filter(item_id__in=list(item_ids))
    return versions


def export_items(
    dataset: Dataset,
    fmt: str,
    *,
    version: int | None = None,
    item_ids: list | None = None,
    split: str | None = None,
) -> StreamingHttpResponse:
    """The dataset's items (at `version`, default current; only `item_ids` if given;
    only one split if given, see `in_split`) as a download."""
    version = dataset.version if version is None else version
    versions = _item_versions(dataset, version, item_ids=item_ids, split=split).only(
        "item_id", "snapshot", "split", "version_number", "created_at"
    )
    suffix = f"-v{version}{_split_suffix(split)}" + ("" if item_ids is None else "-selected")
    return _stream(item_rows(versions), ITEM_COLUMNS, fmt, f"{_slug(dataset.name)}{suffix}")


def _attachment(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type=FINETUNE_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_items_finetune(
    dataset: Dataset, *, version: int | None = None, split: str | None = None
) -> StreamingHttpResponse:
    """The items (at `version`, of one split if given) as OpenAI chat fine-tuning JSONL:
    the input is the user's turn, the expected output the assistant's answer; items
    without an expected output are left out."""
    version = dataset.version if version is None else version
    versions = _item_versions(dataset, version, split=split).only("item_id", "snapshot")
    pairs = ((v.snapshot.get("input"), v.snapshot.get("expectedOutput")) for v in versions.iterator(chunk_size=1000))
    filename = f"{_slug(dataset.name)}-v{version}{_split_suffix(split)}-finetune.jsonl"
    return _attachment(curation.finetune_lines(pairs), filename)


# A reviewer approves a result with a score of at least this, or the label "good";
# a score below it, or the label "bad", rejects it.
APPROVED_SCORE = 0.5


def reviewed_results(run: DatasetRun) -> QuerySet[DatasetRunResult]:
    """The run's results a reviewer approved and none rejected, without an error:
    at least one annotation (any name, any author) scoring ≥ 0.5 or labelled
    "good", and none scoring < 0.5 or labelled "bad"."""
    mine = Annotation.objects.filter(result=OuterRef("pk"))
    approved = mine.filter(Q(score__gte=APPROVED_SCORE) | Q(label="good"))
    rejected = mine.filter(Q(score__lt=APPROVED_SCORE) | Q(label="bad"))
    return run.results.in_dataset_order().filter(Exists(approved), ~Exists(rejected), error__isnull=True)


def export_reviewed_finetune(run: DatasetRun) -> StreamingHttpResponse:
    """The run's approved results (`reviewed_results`) as OpenAI chat fine-tuning JSONL,
    the run's output as the assistant's answer."""
    rows = reviewed_results(run).values_list("input", "output")
    filename = f"{_slug(run.dataset.name)}-{_slug(run.name)}-reviewed-finetune.jsonl"
    return _attachment(curation.finetune_lines(rows.iterator(chunk_size=1000)), filename)


def _annotations(result: DatasetRunResult) -> list[dict[str, Any]]:
    return [
        {
            "name": a.name,
            "score": a.score,
            "label": a.label,
            "comment": a.comment,
            "author": a.author.get_username(),
        }
        for a in result.annotations.all()
    ]


def result_rows(run: DatasetRun) -> Iterator[dict]:
    """The run's results in dataset order, each naming its run (exports of several
    runs can be put side by side), with the reviewers' annotations (prefetched
    per chunk of rows: two queries per 1000 results)."""
    annotations = Prefetch(
        "annotations", queryset=Annotation.objects.select_related("author").order_by("name", "created_at", "id")
    )
    results = run.results.in_dataset_order().prefetch_related(annotations)
    for result in results.iterator(chunk_size=1000):
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
            "annotations": _annotations(result),
        }


def export_run_results(run: DatasetRun, fmt: str) -> StreamingHttpResponse:
    """Every result of the run, in dataset order, as a CSV or JSONL download."""
    filename = f"{_slug(run.dataset.name)}-{_slug(run.name)}-results"
    return _stream(result_rows(run), RESULT_COLUMNS, fmt, filename)
