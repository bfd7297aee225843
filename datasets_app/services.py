"""Every write to datasets, items and runs goes through one of these functions.

Views, serializers, admin actions and commands translate their input into
these calls, so there is exactly one place that says what a change does
(versions, counters, validation, enqueueing).
"""

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NotRequired, TypedDict
from uuid import UUID

import jsonschema
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import OperationalError, transaction
from django.db.models import F, Max
from django.utils import timezone

from . import annotations, schemas
from .exceptions import InvalidInput, NotFound, StateConflict
from .models import (
    Dataset,
    DatasetItem,
    DatasetItemVersion,
    DatasetRun,
    DatasetVersion,
    Project,
    RunChunk,
    default_annotation_config,
)
from .runs import lifecycle, registry
from .runs.rows import ordered_uuids

# "Leave this field as it is" in the update services (None is a value there).
UNSET: Any = object()
MAX_CONCURRENCY_LIMIT = 256
MAX_RETRIES_LIMIT = 10
MAX_REPETITIONS = 100


class NewItem(TypedDict):
    """One item to add: `input` is required, the rest default to null."""

    input: Any
    expected_output: NotRequired[Any]
    context: NotRequired[Any]
    metadata: NotRequired[Any]
    split: NotRequired[str | None]


# ---- validation ------------------------------------------------------------


def check_json_schema(schema: Any, *, field: str) -> None:
    """Reject a schema that is not a JSON Schema `schemas` can apply (RE2 patterns)."""
    if schema is None:
        return
    problem = schemas.problem(schema)
    if problem:
        raise InvalidInput(f"Invalid {field.replace('_', ' ')}: {problem}", {field: [problem]})


def _schema_error_path(error: jsonschema.ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path)


def validate_item_against_schemas(*, dataset: Dataset, input: Any, expected_output: Any, prefix: str = "") -> None:
    """Raise InvalidInput naming the failing path when an item breaks the dataset's schemas.

    Error keys are the field, then the JSON path inside it (`expected_output/answer`),
    after `prefix` (`items/3/` for an entry of a bulk add).
    """
    errors: dict[str, list[str]] = {}
    with schemas.work_budget():  # one for both fields, and for all the items of a bulk add
        for field, value, schema in (
            ("input", input, dataset.input_schema),
            ("expected_output", expected_output, dataset.output_schema),
        ):
            if schema is None or (field == "expected_output" and value is None):
                continue
            try:
                found = schemas.iter_errors(schema, value)
            except schemas.NotApplicable as exc:
                schema_name = "input schema" if field == "input" else "output schema"
                errors[f"{prefix}{field}"] = [f"the dataset's {schema_name} cannot be applied: {exc}"]
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
    project: Project,
    name: str,
    description: str | None = "",
    metadata: Any = None,
    input_schema: Any = None,
    output_schema: Any = None,
    annotation_config: Any = None,
) -> Dataset:
    """A new, empty dataset (version 0). Without an `annotation_config`, reviewers
    grade its results as "human: good | bad | unsure"."""
    name = _clean_name(name)
    check_json_schema(input_schema, field="input_schema")
    check_json_schema(output_schema, field="output_schema")
    return Dataset.objects.create(
        project=project,
        name=name,
        description=description or "",
        metadata=metadata,
        input_schema=input_schema,
        output_schema=output_schema,
        annotation_config=(
            default_annotation_config() if annotation_config is None else annotations.clean_config(annotation_config)
        ),
    )


def dataset_update(
    *,
    dataset: Dataset,
    name: str = UNSET,
    description: str | None = UNSET,
    metadata: Any = UNSET,
    input_schema: Any = UNSET,
    output_schema: Any = UNSET,
    annotation_config: Any = UNSET,
) -> Dataset:
    """Change the given fields (the others stay as they are); returns the dataset
    as saved, which `dataset` is updated to as well.

    Only those fields are written, onto the row as it is now: the version and
    item count that item writes committed since `dataset` was read stay.
    """
    changes: dict[str, Any] = {}
    if name is not UNSET:
        changes["name"] = _clean_name(name)
    if description is not UNSET:
        changes["description"] = description or ""
    if metadata is not UNSET:
        changes["metadata"] = metadata
    if input_schema is not UNSET:
        check_json_schema(input_schema, field="input_schema")
        changes["input_schema"] = input_schema
    if output_schema is not UNSET:
        check_json_schema(output_schema, field="output_schema")
        changes["output_schema"] = output_schema
    if annotation_config is not UNSET:
        # Renaming or removing a name keeps the annotations already given under it.
        changes["annotation_config"] = annotations.clean_config(annotation_config)
    with transaction.atomic():
        locked = _lock_dataset(dataset.pk)  # a dataset deleted meanwhile is not written back
        for field, value in changes.items():
            setattr(locked, field, value)
        locked.save(update_fields=[*changes, "updated_at"])
    for column in Dataset._meta.concrete_fields:
        setattr(dataset, column.attname, getattr(locked, column.attname))
    return locked


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete the dataset with its items, runs and results.

    The dataset row is locked first, as every item write and run start does,
    so they queue instead of deadlocking, and the ones that come after the
    delete find the dataset gone (404). Then its runs' chunks and the runs
    themselves, in the order the engine's writer locks them (a chunk, then
    its run): a worker that is writing results finishes first, one that
    writes later finds its chunk gone and writes nothing, so no result is
    added behind the delete. A deadlock with a worker that locks the other
    way round (closing a run) is retried.
    """

    def delete() -> None:
        with transaction.atomic():
            locked = _lock_dataset(dataset.pk)
            chunks = RunChunk.objects.filter(run__dataset_id=dataset.pk).order_by("pk")
            list(chunks.select_for_update(of=("self",)).values_list("pk", flat=True))
            runs = DatasetRun.objects.filter(dataset_id=dataset.pk).order_by("pk")
            list(runs.select_for_update().values_list("pk", flat=True))
            locked.delete()

    _retry_deadlocks(delete)


def dataset_duplicate(*, dataset: Dataset, name: str | None = None) -> Dataset:
    """A new dataset (version 1) holding copies of the live items."""
    copy = dataset_create(
        project=dataset.project,
        name=name or f"{dataset.name} (copy)",
        description=dataset.description,
        metadata=dataset.metadata,
        input_schema=dataset.input_schema,
        output_schema=dataset.output_schema,
    )
    items = dataset.items.live().order_by("created_at", "id").iterator(chunk_size=1000)
    items_bulk_create(dataset=copy, items=[new_item_like(item) for item in items], allow_empty=True)
    copy.refresh_from_db()
    return copy


# ---- items -------------------------------------------------------------------

MAX_SPLIT_LENGTH = 50


def clean_split(split: Any, *, field: str = "split") -> str | None:
    """A split name as stored: trimmed, at most 50 printable characters; blank is "no split"."""
    if split is None:
        return None
    if not isinstance(split, str):
        raise InvalidInput("split must be a string or null", {field: ["Must be a string or null."]})
    cleaned = split.strip()
    if len(cleaned) > MAX_SPLIT_LENGTH or not cleaned.isprintable():
        message = f"At most {MAX_SPLIT_LENGTH} printable characters."
        raise InvalidInput(f"Invalid split: {message}", {field: [message]})
    return cleaned or None


def new_item_like(item: DatasetItem) -> NewItem:
    """An item's content, to add it (to another dataset, or again)."""
    return {
        "input": item.input,
        "expected_output": item.expected_output,
        "context": item.context,
        "metadata": item.metadata,
        "split": item.split,
    }


def _lock_dataset(dataset_id: UUID) -> Dataset:
    """Lock the dataset row (inside atomic) and return it as it is now. Every
    write to a dataset's items takes this lock before any item lock: one lock
    order, no deadlocks. A dataset deleted meanwhile is NotFound (404)."""
    locked = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if locked is None:
        raise NotFound("The dataset was deleted")
    return locked


DEADLOCK_RETRIES = 3


def _retry_deadlocks[T](write: Callable[[], T]) -> T:
    """`write()`, run again when the database broke a deadlock by aborting it
    (PostgreSQL's 40P01); a StateConflict (409) when that keeps happening.
    Only a transaction of its own can be retried: inside an outer one, the
    error goes up as it is."""
    for attempt in range(DEADLOCK_RETRIES):
        try:
            return write()
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "40P01" or transaction.get_connection().in_atomic_block:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise StateConflict("Other changes to this dataset got in the way; try again")


def _next_dataset_version(dataset: Dataset) -> int:
    """Lock the dataset row and move it to its next version (call inside atomic)."""
    locked = _lock_dataset(dataset.pk)
    locked.version += 1
    Dataset.objects.filter(pk=dataset.pk).update(version=locked.version, updated_at=timezone.now())
    DatasetVersion.objects.create(dataset_id=dataset.pk, version=locked.version)
    dataset.version = locked.version
    return locked.version


def _close_current_versions(item_ids: Iterable[UUID], dataset_version: int) -> None:
    DatasetItemVersion.objects.filter(item_id__in=list(item_ids)).current().update(valid_until=dataset_version)


def _change_items(dataset: Dataset, items: list[DatasetItem], **changes: Any) -> None:
    """Set `changes` on the locked live items as one new dataset version: each item
    moves to its next version and gets a version row (a tombstone for
    `is_deleted=True`). Call inside atomic, with the dataset locked."""
    dataset_version = _next_dataset_version(dataset)
    _close_current_versions([i.pk for i in items], dataset_version)
    now = timezone.now()  # bulk_update does not apply auto_now
    for item in items:
        item.version += 1
        item.updated_at = now
        for field, value in changes.items():
            setattr(item, field, value)
    DatasetItem.objects.bulk_update(items, ["version", *changes, "updated_at"], batch_size=500)
    DatasetItemVersion.objects.bulk_create(
        [DatasetItemVersion.for_item(i, dataset_version=dataset_version, is_deleted=i.is_deleted) for i in items],
        batch_size=500,
    )


def item_create(
    *,
    dataset: Dataset,
    input: Any,
    expected_output: Any = None,
    context: Any = None,
    metadata: Any = None,
    split: str | None = None,
) -> DatasetItem:
    return items_bulk_create(
        dataset=dataset,
        items=[
            {
                "input": input,
                "expected_output": expected_output,
                "context": context,
                "metadata": metadata,
                "split": split,
            }
        ],
    )[0]


def items_bulk_create(*, dataset: Dataset, items: Sequence[NewItem], allow_empty: bool = False) -> list[DatasetItem]:
    """Add items all or nothing, as one dataset version.

    A failing entry rejects the whole batch with errors keyed
    `items/<index>/<field>/<path>` (no prefix when there is one entry).
    """
    if not items and not allow_empty:
        raise InvalidInput("items must not be empty", {"items": ["At least one item is required."]})
    errors: dict[str, list[str]] = {}
    with schemas.work_budget():  # one for the whole batch: its size does not multiply the bound
        for index, entry in enumerate(items):
            prefix = f"items/{index}/" if len(items) > 1 else ""
            if not isinstance(entry, dict) or "input" not in entry:
                errors[f"{prefix}input"] = ["This field is required."]
                continue
            for unknown in entry.keys() - NewItem.__annotations__.keys():
                errors[f"{prefix}{unknown}"] = ["Not a field of an item."]
            try:
                validate_item_against_schemas(
                    dataset=dataset, input=entry["input"], expected_output=entry.get("expected_output"), prefix=prefix
                )
                clean_split(entry.get("split"), field=f"{prefix}split")
            except InvalidInput as exc:
                errors.update(exc.errors)
    if errors:
        first = next(iter(errors))
        raise InvalidInput(f"Invalid item at {first}", errors)
    if not items:
        return []
    with transaction.atomic():
        dataset_version = _next_dataset_version(dataset)
        # Under the dataset lock: positions continue from the last item, and ids are
        # time-ordered in the same order, so a run lists and runs them as they were added.
        last = DatasetItem.objects.filter(dataset=dataset).aggregate(last=Max("position"))["last"] or 0
        ids = ordered_uuids(len(items))
        created = DatasetItem.objects.bulk_create(
            [
                DatasetItem(
                    id=ids[index],
                    position=last + index + 1,
                    dataset=dataset,
                    input=entry["input"],
                    expected_output=entry.get("expected_output"),
                    context=entry.get("context"),
                    metadata=entry.get("metadata"),
                    split=clean_split(entry.get("split")),
                )
                for index, entry in enumerate(items)
            ],
            batch_size=500,
        )
        DatasetItemVersion.objects.bulk_create(
            [DatasetItemVersion.for_item(item, dataset_version=dataset_version) for item in created], batch_size=500
        )
        Dataset.objects.filter(pk=dataset.pk).update(item_count=F("item_count") + len(created))
        # While the row is locked: a delete may commit as soon as this transaction does.
        dataset.refresh_from_db(fields=["item_count", "version", "updated_at"])
    return created


def item_update(
    *,
    item: DatasetItem,
    input: Any = UNSET,
    expected_output: Any = UNSET,
    context: Any = UNSET,
    metadata: Any = UNSET,
    split: str | None = UNSET,
) -> DatasetItem:
    """Change the given fields as a new item version and dataset version; returns the item as saved."""
    with transaction.atomic():
        # By id: `item.dataset` would be loaded from a row a concurrent delete may have removed.
        dataset = _lock_dataset(item.dataset_id)
        # The row as it is now, locked: a delete or update that committed since
        # `item` was read is seen here rather than written over.
        current = DatasetItem.objects.select_for_update().filter(pk=item.pk).first()
        if current is None:
            raise NotFound("The item was deleted")
        if current.is_deleted:
            raise StateConflict("This item was deleted")
        if input is not UNSET:
            current.input = input
        if expected_output is not UNSET:
            current.expected_output = expected_output
        if context is not UNSET:
            current.context = context
        if metadata is not UNSET:
            current.metadata = metadata
        if split is not UNSET:
            current.split = clean_split(split)
        validate_item_against_schemas(dataset=dataset, input=current.input, expected_output=current.expected_output)
        dataset_version = _next_dataset_version(dataset)
        current.version += 1
        current.save()
        _close_current_versions([current.pk], dataset_version)
        DatasetItemVersion.for_item(current, dataset_version=dataset_version).save()
    if DatasetItem.dataset.is_cached(item):  # the caller's dataset moves on too, as with the other item writes
        item.dataset.version = dataset.version
    return current


def item_delete(*, item: DatasetItem) -> None:
    # Not `item.dataset` unless loaded already: it would be read from a row a concurrent delete may have removed.
    dataset = item.dataset if DatasetItem.dataset.is_cached(item) else Dataset(pk=item.dataset_id)
    items_bulk_delete(dataset=dataset, item_ids=[item.pk])


def items_bulk_delete(*, dataset: Dataset, item_ids: Iterable[UUID | str]) -> int:
    """Tombstone the given live items as one dataset version; returns how many."""
    with transaction.atomic():
        _lock_dataset(dataset.pk)
        items = list(dataset.items.live().filter(pk__in=list(item_ids)).select_for_update())
        if not items:
            return 0
        _change_items(dataset, items, is_deleted=True)
        Dataset.objects.filter(pk=dataset.pk).update(item_count=F("item_count") - len(items))
        # While the row is locked: a delete may commit as soon as this transaction does.
        dataset.refresh_from_db(fields=["item_count", "version", "updated_at"])
    return len(items)


def items_set_split(*, dataset: Dataset, item_ids: Iterable[UUID | str], split: str | None) -> int:
    """Put the given live items in one split (None: no split) as one dataset
    version; items already there are left alone. Returns how many moved."""
    split = clean_split(split)
    with transaction.atomic():
        _lock_dataset(dataset.pk)
        items = [
            item
            for item in dataset.items.live().filter(pk__in=list(item_ids)).select_for_update().order_by("position")
            if item.split != split
        ]
        if not items:
            return 0
        _change_items(dataset, items, split=split)
        dataset.refresh_from_db(fields=["item_count", "version", "updated_at"])
    return len(items)


def dataset_splits(dataset: Dataset) -> list[str]:
    """The split names the dataset's live items use, sorted."""
    # No ordering: the default one would make `distinct` count (split, created_at) pairs.
    names = dataset.items.live().exclude(split=None).order_by().values_list("split", flat=True).distinct()
    return sorted(name for name in names if name)


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
    user: AbstractBaseUser | AnonymousUser | None = None,
    name: str | None = None,
    description: str | None = "",
    metadata: Any = None,
    tags: list[str] | None = None,
    split: str | None = None,
) -> DatasetRun:
    """Record a pending run and queue its chunks for the workers, in one
    transaction: a committed run always has its work queued. Without a `name`,
    the run is named after what ran and when ("keyword-agent · 2026-12-02 09:30").
    With a `split`, only the items in that split at the version run."""
    scorer_ids = list(scorer_ids or [])
    errors: dict[str, list[str]] = {}
    try:
        split = clean_split(split)
    except InvalidInput as exc:
        errors.update(exc.errors)
    target = registry.get_target(target_type, target_id)
    if target is None:
        errors["target_id"] = [f"Unknown target {target_type}/{target_id}"]
    elif reason := registry.unavailable_reason(target):
        errors["target_id"] = [f"{target_type}/{target_id} is not available: {reason}"]
    for scorer_id in scorer_ids:
        scorer = registry.get_scorer(scorer_id)
        if scorer is None:
            errors.setdefault("scorer_ids", []).append(f"Unknown scorer {scorer_id}")
        elif reason := registry.unavailable_reason(scorer):
            errors.setdefault("scorer_ids", []).append(f"{scorer_id} is not available: {reason}")
    try:
        tags = _clean_tags(tags)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if not (1 <= max_concurrency <= MAX_CONCURRENCY_LIMIT):
        errors["max_concurrency"] = [f"Must be between 1 and {MAX_CONCURRENCY_LIMIT}."]
    if item_timeout is not None and item_timeout <= 0:
        errors["item_timeout"] = ["Must be a positive number of seconds."]
    if not (0 <= max_retries <= MAX_RETRIES_LIMIT):
        errors["max_retries"] = [f"Must be between 0 and {MAX_RETRIES_LIMIT}."]
    if not (1 <= repetitions <= MAX_REPETITIONS):
        errors["repetitions"] = [f"Must be between 1 and {MAX_REPETITIONS}."]
    if version is None:
        version = dataset.version
    elif not (1 <= version <= dataset.version):
        errors["version"] = [f"Dataset has versions 1 to {dataset.version}."]
    if errors:
        raise InvalidInput(f"Cannot start the run: {next(iter(errors.values()))[0]}", errors)

    with transaction.atomic():
        _lock_dataset(dataset.pk)
        run = DatasetRun.objects.create(
            dataset=dataset,
            name=(name or "").strip()[:255] or default_run_name(target_id),
            description=description or "",
            metadata=metadata,
            tags=tags,
            dataset_version=version,
            split=split,
            target_type=target_type,
            target_id=target_id,
            scorer_ids=scorer_ids,
            max_concurrency=max_concurrency,
            item_timeout=item_timeout,
            max_retries=max_retries,
            repetitions=repetitions,
            rerun_of=rerun_of,
            created_by_id=user.pk if isinstance(user, AbstractBaseUser) else None,
        )
        chunks = _plan_chunks(run, settings.PLAYGROUND_CHUNK_SIZE)
        item_total = sum(c.item_count for c in chunks)
        if item_total == 0 and split is not None:
            message = f"No items in split {split!r} at version {version}."
            raise InvalidInput(f"The dataset has no items to run: {message}", {"split": [message]})
        if item_total == 0:
            raise InvalidInput("The dataset has no items at this version", {"version": ["No items to run."]})
        run.total_items = item_total * repetitions
        run.save(update_fields=["total_items"])
        lifecycle.enqueue(run, chunks)
    return run


MAX_TAGS = 20
MAX_TAG_LENGTH = 50


def default_run_name(target_id: str) -> str:
    """What ran and when: "keyword-agent · 2026-12-02 09:30" (UTC)."""
    return f"{target_id} · {timezone.now():%Y-%m-%d %H:%M}"


def _clean_tags(tags: Any) -> list[str]:
    """Tags as stored: trimmed, distinct, in the order given."""
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("tags must be a list of strings", {"tags": ["Must be a list of strings."]})
    cleaned = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    if len(cleaned) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in cleaned):
        message = f"At most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters."
        raise InvalidInput(f"Invalid tags: {message}", {"tags": [message]})
    return cleaned


def run_update(
    *,
    run: DatasetRun,
    name: str = UNSET,
    description: str | None = UNSET,
    metadata: Any = UNSET,
    tags: list[str] | None = UNSET,
) -> DatasetRun:
    """Rename, describe or tag a run, at any status: these say what the run is
    called, not what it did, so a finished run may still change them."""
    fields = []
    if name is not UNSET:
        if not name or not str(name).strip():
            raise InvalidInput("name is required", {"name": ["This field may not be blank."]})
        run.name = str(name).strip()[:255]
        fields.append("name")
    if description is not UNSET:
        run.description = description or ""
        fields.append("description")
    if metadata is not UNSET:
        run.metadata = metadata
        fields.append("metadata")
    if tags is not UNSET:
        run.tags = _clean_tags(tags)
        fields.append("tags")
    if fields and not DatasetRun.objects.filter(pk=run.pk).update(**{f: getattr(run, f) for f in fields}):
        raise NotFound("The run was deleted")
    return run


def _plan_chunks(run: DatasetRun, chunk_size: int) -> list[RunChunk]:
    """Cut the run's item ids into ranges of chunk_size, streaming the ids."""
    chunks: list[RunChunk] = []
    after: UUID | None = None
    last: UUID | None = None
    count = 0
    for item_id in run.work_items().values_list("item_id", flat=True).iterator(chunk_size=2000):
        count += 1
        last = item_id
        if count == chunk_size:
            chunks.append(
                RunChunk(run=run, index=len(chunks), after_item_id=after, last_item_id=last, item_count=count)
            )
            after, count = last, 0
    if count and last is not None:
        chunks.append(RunChunk(run=run, index=len(chunks), after_item_id=after, last_item_id=last, item_count=count))
    return chunks


def run_cancel(*, run: DatasetRun) -> DatasetRun:
    """Stop a pending or running run (see `lifecycle.cancel_run`).

    The dataset row is locked first, as a dataset delete does, so the two queue
    (a cancel locks the run, then its chunks; a delete the chunks, then the
    run); a cancel after the delete finds the run gone (404). A deadlock with a
    worker writing results (which locks a chunk, then the run) is retried.
    """

    def cancel() -> DatasetRun:
        with transaction.atomic():
            _lock_dataset(run.dataset_id)
            try:
                return lifecycle.cancel_run(run=run)
            except DatasetRun.DoesNotExist:
                raise NotFound("The run was deleted") from None

    return _retry_deadlocks(cancel)


def run_rerun_failed(*, run: DatasetRun, user: AbstractBaseUser | AnonymousUser | None = None) -> DatasetRun:
    """A new run over the items that failed in a finished run, with the same settings.

    The dataset row is locked first: a dataset deleted meanwhile is NotFound
    (404), not a run without failures."""
    with transaction.atomic():
        dataset = _lock_dataset(run.dataset_id)
        current = DatasetRun.objects.filter(pk=run.pk).first()
        if current is None:
            raise NotFound("The run was deleted")
        if not current.is_terminal:
            raise StateConflict("Wait for the run to finish before rerunning its failures")
        if not current.results.failed().exists():
            raise InvalidInput("The run has no failed items to rerun")
        return run_start(
            dataset=dataset,
            target_type=current.target_type,
            target_id=current.target_id,
            scorer_ids=current.scorer_ids,
            version=current.dataset_version,
            max_concurrency=current.max_concurrency,
            item_timeout=current.item_timeout,
            max_retries=current.max_retries,
            repetitions=1,
            rerun_of=current,
            split=current.split,
            user=user,
            name=f"{current.name or current.target_id} (failed items rerun)",
            tags=current.tags,
        )
