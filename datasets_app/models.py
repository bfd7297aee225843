"""The domain: datasets, their versioned items, runs, results and traces.

Writes go through `services.py` (and the run engine in `runs/`); reads use
the QuerySet methods here. Rows carry their own invariants in `Meta`.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from .fields import OpaqueJSONField


class Dataset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    metadata = OpaqueJSONField(null=True, blank=True)
    input_schema = OpaqueJSONField(null=True, blank=True)
    output_schema = OpaqueJSONField(null=True, blank=True)
    # Grows by one with every change to the items (a bulk add counts once).
    version = models.PositiveIntegerField(default=0)
    # Live items, kept in step by the item services (no COUNT(*) per page).
    item_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="dataset_created_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="dataset_name_not_empty"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("dataset-detail", args=[self.id])


class DatasetVersion(models.Model):
    """One row per dataset version: when each change to the items happened."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "version"], name="dataset_version_unique"),
        ]

    def __str__(self):
        return f"{self.dataset} v{self.version}"


class DatasetItemQuerySet(models.QuerySet):
    def live(self):
        return self.filter(is_deleted=False)

    def search(self, text: str):
        """Match the text anywhere in the item's input, expected output or context."""
        if not text:
            return self
        return self.filter(
            Q(input__icontains=text) | Q(expected_output__icontains=text) | Q(context__icontains=text)
        )


class DatasetItem(models.Model):
    """The current state of an item. Its history lives in DatasetItemVersion.

    A deleted item stays as a tombstone (`is_deleted`) so that past runs and
    past dataset versions still point at it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    # The item's own version number: 1 on creation, +1 on every change.
    version = models.PositiveIntegerField(default=1)
    input = OpaqueJSONField()
    expected_output = OpaqueJSONField(null=True, blank=True)
    context = OpaqueJSONField(null=True, blank=True)
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DatasetItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["dataset", "is_deleted", "-created_at", "-id"], name="item_list_idx"),
        ]

    def __str__(self):
        return f"item {self.id}"

    def snapshot(self) -> dict:
        return {
            "input": self.input,
            "expectedOutput": self.expected_output,
            "context": self.context,
        }


class DatasetItemVersionQuerySet(models.QuerySet):
    def live_at(self, dataset_version: int):
        """Item versions in force at that dataset version (deleted items excluded)."""
        return self.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gt=dataset_version),
            dataset_version__lte=dataset_version,
            is_deleted=False,
        )

    def search(self, text: str):
        if not text:
            return self
        return self.filter(snapshot_text__icontains=text)


class DatasetItemVersion(models.Model):
    """An immutable snapshot of an item, written on every add, update and delete.

    `dataset_version` is the dataset version this snapshot came in with;
    `valid_until` the dataset version that replaced it (null while current).
    That interval makes "the items at version V" one indexed range query.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(DatasetItem, on_delete=models.CASCADE, related_name="versions")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="item_versions")
    version_number = models.PositiveIntegerField()
    dataset_version = models.PositiveIntegerField()
    valid_until = models.PositiveIntegerField(null=True, blank=True)
    snapshot = OpaqueJSONField()
    # The searchable text of the snapshot's values (input/expected/context).
    snapshot_text = models.TextField(blank=True, default="", editable=False)
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DatasetItemVersionQuerySet.as_manager()

    class Meta:
        ordering = ["item_id", "version_number"]
        constraints = [
            models.UniqueConstraint(fields=["item", "version_number"], name="item_version_unique"),
        ]
        indexes = [
            models.Index(fields=["dataset", "dataset_version", "valid_until", "item"], name="item_version_range_idx"),
            # A run chunk reads an item-id range of the versions in order.
            models.Index(fields=["dataset", "item", "dataset_version"], name="item_version_chunk_idx"),
        ]

    def __str__(self):
        return f"{self.item_id} v{self.version_number}"


class DatasetRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING)

    class TargetType(models.TextChoices):
        AGENT = "agent"
        WORKFLOW = "workflow"
        SCORER = "scorer"
        HTTP = "http"
        MODEL = "model"
        CALLABLE = "callable"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    dataset_version = models.PositiveIntegerField()
    target_type = models.CharField(max_length=20, choices=TargetType.choices)
    target_id = models.CharField(max_length=255)
    scorer_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Counters move in the same transaction as the result rows they count.
    total_items = models.PositiveIntegerField(default=0)
    succeeded_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    # Per scorer: {"count", "sum", "errors", "histogram": [10 buckets of 0.1]}, moved
    # with the counters, so the run page never scans the results for its cards.
    score_stats = models.JSONField(default=dict, blank=True)
    max_concurrency = models.PositiveIntegerField(default=5)
    item_timeout = models.FloatField(null=True, blank=True, help_text="Seconds per attempt")
    max_retries = models.PositiveIntegerField(default=0)
    repetitions = models.PositiveIntegerField(default=1)
    # A rerun executes only the items that failed in this earlier run.
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    error = models.TextField(blank=True, default="", help_text="Why the run as a whole failed")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["dataset", "-created_at", "-id"], name="run_list_idx"),
            models.Index(fields=["dataset", "status", "-created_at"], name="run_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(max_concurrency__gte=1), name="run_concurrency_positive"),
            models.CheckConstraint(condition=Q(repetitions__gte=1), name="run_repetitions_positive"),
            models.CheckConstraint(
                condition=Q(succeeded_count__lte=models.F("total_items") - models.F("failed_count")),
                name="run_counters_within_total",
            ),
        ]

    def __str__(self):
        return f"run {self.id} ({self.status})"

    def get_absolute_url(self):
        return reverse("run-detail", args=[self.dataset_id, self.id])

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    @property
    def done_count(self) -> int:
        return self.succeeded_count + self.failed_count

    @property
    def progress_percent(self) -> int:
        if not self.total_items:
            return 100 if self.is_terminal else 0
        return int(100 * self.done_count / self.total_items)

    @property
    def scorer_means(self) -> list[tuple[str, float | None]]:
        """(scorer id, mean score so far) for each of the run's scorers."""
        means = []
        for scorer_id in self.scorer_ids:
            stats = self.score_stats.get(scorer_id) or {}
            means.append((scorer_id, stats["sum"] / stats["count"] if stats.get("count") else None))
        return means

    def work_items(self):
        """The item versions this run executes, ordered by item id (chunks are id ranges)."""
        items = DatasetItemVersion.objects.filter(dataset_id=self.dataset_id).live_at(self.dataset_version)
        if self.rerun_of_id:
            failed = DatasetRunResult.objects.filter(run_id=self.rerun_of_id, error__isnull=False)
            items = items.filter(item_id__in=failed.values("item_id"))
        return items.order_by("item_id")


class RunChunk(models.Model):
    """A slice of a run's items (an item-id range) that one worker executes.

    Workers hold a chunk under a lease they renew while working; a chunk whose
    lease ran out (its worker died) is taken over, skipping the items that
    already have results.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"

    run = models.ForeignKey(DatasetRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    # Items with after_item_id < item_id <= last_item_id (after_item_id null: from the start).
    after_item_id = models.UUIDField(null=True, blank=True)
    last_item_id = models.UUIDField()
    item_count = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker claimed this chunk (a takeover counts again).
    attempts = models.PositiveIntegerField(default=0)
    # The last job (item id, repetition) the holder announced before starting
    # it. If the holder dies, every job up to here without a result was in
    # flight: a takeover counts one crash against each (`crash_counts`).
    frontier_item_id = models.UUIDField(null=True, blank=True)
    frontier_repetition = models.PositiveIntegerField(null=True, blank=True)
    # {"<item id>:<repetition>": crashes}: an item the worker died on three
    # times gets that as its error instead of being run a fourth time.
    crash_counts = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="chunk_index_unique"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="chunk_lease_idx")]

    def __str__(self):
        return f"chunk {self.index} of {self.run_id}"


class DatasetRunResultQuerySet(models.QuerySet):
    def in_display_order(self):
        return self.order_by("started_at", "id")


class DatasetRunResult(models.Model):
    """What one item (and repetition) left behind in one run."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the (run, …) indexes below start with it. Every index
    # here is paid on every result insert, so each one has a reader.
    run = models.ForeignKey(DatasetRun, on_delete=models.CASCADE, related_name="results", db_index=False)
    item = models.ForeignKey(DatasetItem, on_delete=models.CASCADE, related_name="results")
    item_version = models.PositiveIntegerField()
    repetition = models.PositiveIntegerField(default=0)
    input = OpaqueJSONField(null=True, blank=True)
    output = OpaqueJSONField(null=True, blank=True)
    expected_output = OpaqueJSONField(null=True, blank=True)
    latency = models.FloatField(help_text="Milliseconds from the first attempt's start to the last's end")
    error = models.TextField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    # Traces are found by their own id (Trace.trace_id), so no index here.
    trace_id = models.CharField(max_length=32, null=True, blank=True)
    scores = models.JSONField(default=list, blank=True)
    usage = models.JSONField(null=True, blank=True, help_text="Token usage reported by the target")
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DatasetRunResultQuerySet.as_manager()

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item", "repetition"], name="result_once_per_item"),
        ]
        indexes = [
            models.Index(fields=["run", "started_at", "id"], name="result_page_idx"),
            # Latency percentiles and "sort by latency" on the run page.
            models.Index(fields=["run", "latency"], name="result_latency_idx"),
        ]

    def __str__(self):
        return f"result {self.id}"

    @property
    def succeeded(self) -> bool:
        return self.error is None


class Trace(models.Model):
    """The spans of one item execution, stored with its result for the trace page."""

    trace_id = models.CharField(max_length=32, primary_key=True)
    run = models.ForeignKey(DatasetRun, null=True, blank=True, on_delete=models.CASCADE, related_name="traces")
    result_id = models.UUIDField(null=True, blank=True)
    name = models.CharField(max_length=255)
    # Read only as a whole: stored as JSON text (no jsonb parsing on write).
    spans = OpaqueJSONField(default=list)
    started_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return self.trace_id


class TraceOutbox(models.Model):
    """Stored traces waiting for OTLP export (written only when export is on).

    The row is inserted in the transaction that stores the trace, so exactly
    the stored traces are exported; the exporter deletes it once the
    receiver has accepted the trace.
    """

    trace = models.OneToOneField(Trace, primary_key=True, on_delete=models.CASCADE, related_name="outbox")
    attempts = models.PositiveIntegerField(default=0)
    # Not before this moment (backoff after a failed export).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["next_attempt_at"], name="outbox_due_idx")]

    def __str__(self):
        return f"outbox {self.trace_id}"
