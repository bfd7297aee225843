"""Every write to datasets, items and runs goes through one of these functions.

Views, serializers, admin actions and commands translate their input into
these calls, so there is exactly one place that says what a change does
(versions, counters, validation, enqueueing).
"""

import json
from collections.abc import Iterable
from typing import Any

import jsonschema
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import schemas
from .exceptions import InvalidInput, StateConflict
from .models import Dataset, DatasetItem, DatasetItemVersion, DatasetRun, DatasetVersion, RunChunk
from .runs import registry
from .runs import lifecycle

UNSET: Any = object()
MAX_CONCURRENCY_LIMIT = 256
MAX_REPETITIONS = 100


# ---- validation ------------------------------------------------------------


def _schema_error_path(error: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path)


def check_json_schema(schema: Any, *, field: str) -> None:
    """Reject a schema that is not a JSON Schema `schemas` can apply (RE2 patterns)."""
    if schema is None:
        return
    problem = schemas.problem(schema)
    if problem:
        raise InvalidInput(f"Invalid {field}: {problem}", {field: [problem]})


def validate_item_against_schemas(
    *, dataset: Dataset, input: Any, expected_output: Any, prefix: str = ""
) -> None:
    """Raise InvalidInput naming the failing path when an item breaks the dataset's schemas."""
    errors: dict[str, list[str]] = {}
    for field, value, schema, schema_field in (
        ("input", input, dataset.input_schema, "inputSchema"),
        ("expectedOutput", expected_output, dataset.output_schema, "outputSchema"),
    ):
        if schema is None or (field == "expectedOutput" and value is None):
            continue
        try:
            found = schemas.iter_errors(schema, value)
        except schemas.NotApplicable as exc:
            errors[f"{prefix}{field}"] = [f"the dataset's {schema_field} cannot be applied: {exc}"]
            continue
        for error in sorted(found, key=lambda e: list(e.absolute_path)):
            path = _schema_error_path(error)
            key = f"{prefix}{field}" + (f"/{path}" if path else "")
            errors.setdefault(key, []).append(error.message)
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"Item does not match the dataset schema at {first}", errors)


# ---- datasets ----------------------------------------------------------------


def _clean_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("name is required", {"name": ["This field may not be blank."]})
    return name.strip()


def dataset_create(
    *,
    name: str,
    description: str = "",
    metadata: Any = None,
    input_schema: Any = None,
    output_schema: Any = None,
) -> Dataset:
    name = _clean_name(name)
    check_json_schema(input_schema, field="inputSchema")
    check_json_schema(output_schema, field="outputSchema")
    return Dataset.objects.create(
        name=name,
        description=description or "",
        metadata=metadata,
        input_schema=input_schema,
        output_schema=output_schema,
    )


def dataset_update(
    *,
    dataset: Dataset,
    name: str = UNSET,
    description: str = UNSET,
    metadata: Any = UNSET,
    input_schema: Any = UNSET,
    output_schema: Any = UNSET,
) -> Dataset:
    if name is not UNSET:
        dataset.name = _clean_name(name)
    if description is not UNSET:
        dataset.description = description or ""
    if metadata is not UNSET:
        dataset.metadata = metadata
    if input_schema is not UNSET:
        check_json_schema(input_schema, field="inputSchema")
        dataset.input_schema = input_schema
    if output_schema is not UNSET:
        check_json_schema(output_schema, field="outputSchema")
        dataset.output_schema = output_schema
    dataset.save()
    return dataset


def dataset_delete(*, dataset: Dataset) -> None:
    dataset.delete()


def dataset_duplicate(*, dataset: Dataset, name: str | None = None) -> Dataset:
    """A new dataset (version 1) holding copies of the live items."""
    copy = dataset_create(
        name=name or f"{dataset.name} (copy)",
        description=dataset.description,
        metadata=dataset.metadata,
        input_schema=dataset.input_schema,
        output_schema=dataset.output_schema,
    )
    items = dataset.items.live().order_by("created_at", "id").iterator(chunk_size=1000)
    items_bulk_create(
        dataset=copy,
        items=[{"input": i.input, "expectedOutput": i.expected_output, "context": i.context} for i in items],
        allow_empty=True,
    )
    copy.refresh_from_db()
    return copy


# ---- items -------------------------------------------------------------------


def _next_dataset_version(dataset: Dataset) -> int:
    """Lock the dataset row and move it to its next version (call inside atomic)."""
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    locked.version += 1
    Dataset.objects.filter(pk=dataset.pk).update(version=locked.version, updated_at=timezone.now())
    DatasetVersion.objects.create(dataset_id=dataset.pk, version=locked.version)
    dataset.version = locked.version
    return locked.version


def _snapshot_text(snapshot: dict) -> str:
    """The text `search` matches: the same compact JSON the live items store."""
    return "\n".join(
        json.dumps(snapshot.get(k), ensure_ascii=False, separators=(",", ":"))
        for k in ("input", "expectedOutput", "context")
    )


def _version_row(item: DatasetItem, *, dataset_version: int, is_deleted: bool = False) -> DatasetItemVersion:
    snapshot = item.snapshot()
    return DatasetItemVersion(
        item=item,
        dataset_id=item.dataset_id,
        version_number=item.version,
        dataset_version=dataset_version,
        snapshot=snapshot,
        snapshot_text=_snapshot_text(snapshot),
        is_deleted=is_deleted,
    )


def _close_current_versions(item_ids: Iterable, dataset_version: int) -> None:
    DatasetItemVersion.objects.filter(item_id__in=list(item_ids), valid_until__isnull=True).update(
        valid_until=dataset_version
    )


def item_create(*, dataset: Dataset, input: Any, expected_output: Any = None, context: Any = None) -> DatasetItem:
    return items_bulk_create(
        dataset=dataset,
        items=[{"input": input, "expectedOutput": expected_output, "context": context}],
    )[0]


def items_bulk_create(*, dataset: Dataset, items: list[dict], allow_empty: bool = False) -> list[DatasetItem]:
    """Add items all or nothing, as one dataset version.

    Each entry is `{"input", "expectedOutput"?, "context"?}`; a failing entry
    rejects the whole batch with errors keyed `items/<index>/<path>`.
    """
    if not items and not allow_empty:
        raise InvalidInput("items must not be empty", {"items": ["At least one item is required."]})
    errors: dict[str, list[str]] = {}
    for index, entry in enumerate(items):
        prefix = f"items/{index}/" if len(items) > 1 else ""
        if not isinstance(entry, dict) or "input" not in entry:
            errors[f"{prefix}input"] = ["This field is required."]
            continue
        try:
            validate_item_against_schemas(
                dataset=dataset, input=entry["input"], expected_output=entry.get("expectedOutput"), prefix=prefix
            )
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"Invalid item at {first}", errors)
    if not items:
        return []
    with transaction.atomic():
        dataset_version = _next_dataset_version(dataset)
        created = DatasetItem.objects.bulk_create(
            [
                DatasetItem(
                    dataset=dataset,
                    input=entry["input"],
                    expected_output=entry.get("expectedOutput"),
                    context=entry.get("context"),
                )
                for entry in items
            ],
            batch_size=500,
        )
        DatasetItemVersion.objects.bulk_create(
            [_version_row(item, dataset_version=dataset_version) for item in created], batch_size=500
        )
        Dataset.objects.filter(pk=dataset.pk).update(item_count=F("item_count") + len(created))
    dataset.refresh_from_db(fields=["item_count", "version", "updated_at"])
    return created


def item_update(
    *, item: DatasetItem, input: Any = UNSET, expected_output: Any = UNSET, context: Any = UNSET
) -> DatasetItem:
    if item.is_deleted:
        raise StateConflict("This item was deleted")
    new_input = item.input if input is UNSET else input
    new_expected = item.expected_output if expected_output is UNSET else expected_output
    validate_item_against_schemas(dataset=item.dataset, input=new_input, expected_output=new_expected)
    with transaction.atomic():
        dataset_version = _next_dataset_version(item.dataset)
        item.input = new_input
        item.expected_output = new_expected
        if context is not UNSET:
            item.context = context
        item.version += 1
        item.save()
        _close_current_versions([item.pk], dataset_version)
        _version_row(item, dataset_version=dataset_version).save()
    return item


def item_delete(*, item: DatasetItem) -> None:
    items_bulk_delete(dataset=item.dataset, item_ids=[item.pk])


def items_bulk_delete(*, dataset: Dataset, item_ids: list) -> int:
    """Tombstone the given live items as one dataset version; returns how many."""
    with transaction.atomic():
        items = list(dataset.items.live().filter(pk__in=list(item_ids)).select_for_update())
        if not items:
            return 0
        dataset_version = _next_dataset_version(dataset)
        _close_current_versions([i.pk for i in items], dataset_version)
        for item in items:
            item.version += 1
            item.is_deleted = True
        DatasetItem.objects.bulk_update(items, ["version", "is_deleted", "updated_at"], batch_size=500)
        DatasetItemVersion.objects.bulk_create(
            [_version_row(i, dataset_version=dataset_version, is_deleted=True) for i in items], batch_size=500
        )
        Dataset.objects.filter(pk=dataset.pk).update(item_count=F("item_count") - len(items))
    dataset.refresh_from_db(fields=["item_count", "version", "updated_at"])
    return len(items)


def items_at_version(*, dataset: Dataset, version: int | None = None, search: str = ""):
    """Item snapshots as they were at a dataset version (default: the current one)."""
    if version is None:
        version = dataset.version
    return (
        DatasetItemVersion.objects.filter(dataset=dataset)
        .live_at(version)
        .search(search)
        .select_related("item")
        .order_by("-item__created_at", "-item_id")
    )


# ---- runs --------------------------------------------------------------------


def run_start(
    *,
    dataset: Dataset,
    target_type: str,
    target_id: str,
    scorer_ids: list[str] | None = None,
    version: int | None = None,
    max_concurrency: int = 5,
    item_timeout: float | None = None,
    max_retries: int = 0,
    repetitions: int = 1,
    rerun_of: DatasetRun | None = None,
    user=None,
) -> DatasetRun:
    """Record a pending run and queue its chunks for the workers, in one
    transaction: a committed run always has its work queued."""
    scorer_ids = list(scorer_ids or [])
    errors: dict[str, list[str]] = {}
    if registry.get_target(target_type, target_id) is None:
        errors["targetId"] = [f"Unknown target {target_type}/{target_id}"]
    for scorer_id in scorer_ids:
        if registry.get_scorer(scorer_id) is None:
            errors.setdefault("scorerIds", []).append(f"Unknown scorer {scorer_id}")
    if not (1 <= int(max_concurrency) <= MAX_CONCURRENCY_LIMIT):
        errors["maxConcurrency"] = [f"Must be between 1 and {MAX_CONCURRENCY_LIMIT}."]
    if item_timeout is not None and item_timeout <= 0:
        errors["itemTimeout"] = ["Must be a positive number of seconds."]
    if max_retries < 0 or max_retries > 10:
        errors["maxRetries"] = ["Must be between 0 and 10."]
    if not (1 <= repetitions <= MAX_REPETITIONS):
        errors["repetitions"] = [f"Must be between 1 and {MAX_REPETITIONS}."]
    if version is None:
        version = dataset.version
    elif not (1 <= version <= dataset.version):
        errors["version"] = [f"Dataset has versions 1 to {dataset.version}."]
    if errors:
        raise InvalidInput(f"Cannot start the run: {next(iter(errors.values()))[0]}", errors)

    with transaction.atomic():
        run = DatasetRun.objects.create(
            dataset=dataset,
            dataset_version=version,
            target_type=target_type,
            target_id=target_id,
            scorer_ids=scorer_ids,
            max_concurrency=max_concurrency,
            item_timeout=item_timeout,
            max_retries=max_retries,
            repetitions=repetitions,
            rerun_of=rerun_of,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        chunks = _plan_chunks(run, settings.PLAYGROUND_CHUNK_SIZE)
        item_total = sum(c.item_count for c in chunks)
        if item_total == 0:
            raise InvalidInput(
                "The dataset has no items at this version", {"version": ["No items to run."]}
            )
        run.total_items = item_total * repetitions
        run.save(update_fields=["total_items"])
        lifecycle.enqueue(run, chunks)
    return run


def _plan_chunks(run: DatasetRun, chunk_size: int) -> list[RunChunk]:
    """Cut the run's item ids into ranges of chunk_size, streaming the ids."""
    chunks: list[RunChunk] = []
    after = None
    count = 0
    last = None
    for item_id in run.work_items().values_list("item_id", flat=True).iterator(chunk_size=2000):
        count += 1
        last = item_id
        if count == chunk_size:
            chunks.append(RunChunk(run=run, index=len(chunks), after_item_id=after, last_item_id=last, item_count=count))
            after, count = last, 0
    if count:
        chunks.append(RunChunk(run=run, index=len(chunks), after_item_id=after, last_item_id=last, item_count=count))
    return chunks


def run_cancel(*, run: DatasetRun) -> DatasetRun:
    """Stop a pending or running run (see `lifecycle.cancel_run`)."""
    return lifecycle.cancel_run(run=run)


def run_rerun_failed(*, run: DatasetRun, user=None) -> DatasetRun:
    """A new run over the items that failed in a finished run, with the same settings."""
    if not run.is_terminal:
        raise StateConflict("Wait for the run to finish before rerunning its failures")
    if not run.results.filter(error__isnull=False).exists():
        raise InvalidInput("The run has no failed items to rerun")
    return run_start(
        dataset=run.dataset,
        target_type=run.target_type,
        target_id=run.target_id,
        scorer_ids=run.scorer_ids,
        version=run.dataset_version,
        max_concurrency=run.max_concurrency,
        item_timeout=run.item_timeout,
        max_retries=run.max_retries,
        repetitions=1,
        rerun_of=run,
        user=user,
    )
