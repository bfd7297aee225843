"""The domain: datasets, their versioned items, runs, results and traces.

Writes go through `services.py` (and the run engine in `runs/`); reads use
the QuerySet methods here. Rows carry their own invariants in `Meta`.
"""

import uuid
from datetime import timedelta
from typing import Any, Self

from django.conf import settings
from django.db import connection, models
from django.db.models import F, FloatField, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone

from . import jsonsafe
from .fields import OpaqueJSONField


class ProjectRole(models.TextChoices):
    """What a member may do in a project; each role includes the ones before it."""

    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(ProjectRole).index(self)

    def allows(self, needed: "ProjectRole") -> bool:
        return self.rank >= needed.rank


def membership_role(user: Any, project_ref: str = "pk") -> Subquery:
    """The user's role in the project the outer query's `project_ref` names (null for a
    non-member): what every access check annotates its object with."""
    memberships = ProjectMembership.objects.filter(project=OuterRef(project_ref), user=user)
    return Subquery(memberships.values("role")[:1])


class ProjectQuerySet(models.QuerySet["Project"]):
    def of_member(self, user: Any) -> Self:
        """The projects `user` is a member of, each annotated with the user's `role`."""
        return self.filter(memberships__user=user).annotate(role=membership_role(user))


class Project(models.Model):
    """Who may see what: every dataset (and so its runs, results and traces) belongs to one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    # The project each user gets on sign-up (datasets created without a project land here).
    personal_for = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="personal_project"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="project_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ProjectRole.choices, default=ProjectRole.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_once_per_user"),
            models.CheckConstraint(condition=Q(role__in=ProjectRole.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class DatasetQuerySet(models.QuerySet["Dataset"]):
    def visible_to(self, user: Any) -> Self:
        """Datasets of the projects `user` is a member of."""
        return self.filter(project__memberships__user=user)

    def editable_by(self, user: Any) -> Self:
        """Datasets of the projects where `user` is an editor or owner."""
        return self.filter(
            project__memberships__user=user,
            project__memberships__role__in=[ProjectRole.EDITOR, ProjectRole.OWNER],
        )

    def search(self, text: str) -> Self:
        """Match the text in the dataset's name or description."""
        if not text:
            return self
        return self.filter(Q(name__icontains=text) | Q(description__icontains=text))

    def with_last_run(self) -> Self:
        """Annotate `last_run_status` and `last_run_at` (null for a dataset never run)."""
        latest = DatasetRun.objects.filter(dataset=OuterRef("pk")).order_by("-created_at", "-id")
        return self.annotate(
            last_run_status=Subquery(latest.values("status")[:1]),
            last_run_at=Subquery(latest.values("created_at")[:1]),
        )


def default_annotation_config() -> list[dict[str, Any]]:
    return [{"name": "human", "labels": ["good", "bad", "unsure"]}]


class Dataset(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    metadata = OpaqueJSONField(null=True, blank=True)
    input_schema = OpaqueJSONField(null=True, blank=True)
    output_schema = OpaqueJSONField(null=True, blank=True)
    # What reviewers grade results with: [{"name": "human", "labels": ["good", "bad", "unsure"]}]
    # (see `annotations.clean_config`); each name is one annotation a reviewer leaves per result.
    annotation_config = models.JSONField(default=default_annotation_config, blank=True)
    # Grows by one with every change to the items (a bulk add counts once).
    version = models.PositiveIntegerField(default=0)
    # Live items, kept in step by the item services (no COUNT(*) per page).
    item_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="dataset_created_idx"),
            models.Index(fields=["project", "-created_at", "-id"], name="dataset_project_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="dataset_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
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

    def __str__(self) -> str:
        return f"{self.dataset} v{self.version}"


class DatasetItemQuerySet(models.QuerySet["DatasetItem"]):
    def live(self) -> Self:
        return self.filter(is_deleted=False)

    def search(self, text: str) -> Self:
        """Match the text anywhere in the item's input, expected output or context."""
        if not text:
            return self
        return self.filter(Q(input__icontains=text) | Q(expected_output__icontains=text) | Q(context__icontains=text))

    def in_split(self, split: str | None) -> Self:
        """Items of one split (None: every item)."""
        return self if split is None else self.filter(split=split)


class DatasetItem(models.Model):
    """The current state of an item. Its history lives in DatasetItemVersion.

    A deleted item stays as a tombstone (`is_deleted`) so that past runs and
    past dataset versions still point at it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    # The item's place in its dataset, 1, 2, 3… in the order items were added (never reused):
    # how pages and results name it ("#12"). Item ids are time-ordered in the same order.
    position = models.PositiveIntegerField(default=0)
    # The item's own version number: 1 on creation, +1 on every change.
    version = models.PositiveIntegerField(default=1)
    input = OpaqueJSONField()
    expected_output = OpaqueJSONField(null=True, blank=True)
    context = OpaqueJSONField(null=True, blank=True)
    # The user's own notes on the item; items made from results say where they came from here.
    metadata = OpaqueJSONField(null=True, blank=True)
    # A named subset ("train", "test", "hard-cases"); a run can be started on one.
    split = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001 — null is "no split", as the API answers it
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DatasetItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["dataset", "is_deleted", "-created_at", "-id"], name="item_list_idx"),
            models.Index(fields=["dataset", "position"], name="item_position_idx"),
        ]

    def __str__(self) -> str:
        return f"item {self.id}"

    def snapshot(self) -> dict[str, Any]:
        """The item's content as its versions store it: the API's item shape,
        returned as is by the item-versions endpoint."""
        return {
            "input": self.input,
            "expectedOutput": self.expected_output,
            "context": self.context,
            "metadata": self.metadata,
            "split": self.split,
        }


class DatasetItemVersionQuerySet(models.QuerySet["DatasetItemVersion"]):
    def live_at(self, dataset_version: int) -> Self:
        """Item versions in force at that dataset version (deleted items excluded)."""
        return self.filter(
            Q(valid_until__isnull=True) | Q(valid_until__gt=dataset_version),
            dataset_version__lte=dataset_version,
            is_deleted=False,
        )

    def at_version(self, dataset: "Dataset", version: int | None = None) -> Self:
        """The dataset's items as they were at a dataset version (default: the current one)."""
        return self.filter(dataset=dataset).live_at(dataset.version if version is None else version)

    def current(self) -> Self:
        """Each item's latest version (a deleted item's is its tombstone)."""
        return self.filter(valid_until__isnull=True)

    def search(self, text: str) -> Self:
        if not text:
            return self
        return self.filter(snapshot_text__icontains=text)

    def in_split(self, split: str | None) -> Self:
        """Item versions of one split (None: every one)."""
        return self if split is None else self.filter(split=split)

    def newest_items_first(self) -> Self:
        """The order of the items table: the item added last comes first."""
        return self.select_related("item").order_by("-item__created_at", "-item_id")


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
    # The item's split at this version (also in the snapshot): a run on a split selects by it.
    split = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001 — null is "no split"
    # The searchable text of the snapshot's values (input/expected/context).
    snapshot_text = models.TextField(blank=True, default="", editable=False)
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DatasetItemVersionQuerySet.as_manager()

    class Meta:
        # No default ordering: chunks read this table in item-id ranges, and each
        # reader names the order it needs.
        constraints = [
            models.UniqueConstraint(fields=["item", "version_number"], name="item_version_unique"),
        ]
        indexes = [
            models.Index(fields=["dataset", "dataset_version", "valid_until", "item"], name="item_version_range_idx"),
            # A run chunk reads an item-id range of the versions in order.
            models.Index(fields=["dataset", "item", "dataset_version"], name="item_version_chunk_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} v{self.version_number}"

    @classmethod
    def for_item(cls, item: DatasetItem, *, dataset_version: int, is_deleted: bool = False) -> "DatasetItemVersion":
        """The (unsaved) version row recording the item as it is now."""
        snapshot = item.snapshot()
        return cls(
            item=item,
            dataset_id=item.dataset_id,
            version_number=item.version,
            dataset_version=dataset_version,
            snapshot=snapshot,
            split=item.split,
            snapshot_text=searchable_text(snapshot),
            is_deleted=is_deleted,
        )


def searchable_text(snapshot: dict[str, Any]) -> str:
    """The text `search` matches: the same compact JSON the live items store."""
    return "\n".join(jsonsafe.encode(snapshot.get(key)) for key in ("input", "expectedOutput", "context"))


class DatasetRunQuerySet(models.QuerySet["DatasetRun"]):
    def with_tag(self, tag: str) -> Self:
        """Runs whose `tags` list holds exactly `tag` (on PostgreSQL and SQLite alike)."""
        if connection.vendor == "postgresql":
            return self.filter(tags__contains=[tag])
        table = connection.ops.quote_name(DatasetRun._meta.db_table)
        return self.filter(
            id__in=RawSQL(f"SELECT {table}.id FROM {table}, json_each({table}.tags) tag WHERE tag.value = %s", (tag,))
        )


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
    # What people call the run: set at start (a default says what ran and when), editable.
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    metadata = OpaqueJSONField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    dataset_version = models.PositiveIntegerField()
    # The split the run was started on (null: every item of the version).
    split = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001 — null is "every item"
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
    # Latency {"count", "sum", "min", "max", "buckets": {log bucket: count}} and token usage
    # per model {model: {"promptTokens", "completionTokens", "totalTokens"}}, moved the same way.
    latency_stats = models.JSONField(default=dict, blank=True)
    usage_totals = models.JSONField(default=dict, blank=True)
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

    objects = DatasetRunQuerySet.as_manager()

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

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("run-detail", args=[self.dataset_id, self.id])

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    @property
    def done_count(self) -> int:
        return self.succeeded_count + self.failed_count

    @property
    def pending_count(self) -> int:
        return max(0, self.total_items - self.done_count)

    @property
    def elapsed(self) -> timedelta | None:
        """Since the run started: until it ended, or until now while it goes on."""
        if not self.started_at:
            return None
        return (self.completed_at or timezone.now()) - self.started_at

    @property
    def progress_percent(self) -> int:
        if not self.total_items:
            return 100 if self.is_terminal else 0
        return int(100 * self.done_count / self.total_items)

    def work_items(self) -> DatasetItemVersionQuerySet:
        """The item versions this run executes, ordered by item id (chunks are id ranges)."""
        items = (
            DatasetItemVersion.objects.filter(dataset_id=self.dataset_id)
            .live_at(self.dataset_version)
            .in_split(self.split)
        )
        if self.rerun_of_id:
            failed = DatasetRunResult.objects.filter(run_id=self.rerun_of_id).failed()
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
        # No default ordering: workers claim chunks many times a second and say
        # which one they want (`lifecycle.claim_chunk`).
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="chunk_index_unique"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="chunk_lease_idx")]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.run_id}"


def score_of(scorer_id: str) -> RawSQL:
    """A result's score from one scorer, read out of its `scores` list in SQL.

    `scores` is `[{scorerId, score, ...}]`; the list's order is not part of the
    contract, so the entry is looked up by scorerId (null when absent or when
    the scorer itself failed).
    """
    column = f'"{DatasetRunResult._meta.db_table}"."scores"'
    if connection.vendor == "postgresql":
        sql = (
            f"(SELECT (entry->>'score')::double precision FROM jsonb_array_elements({column}) entry "
            "WHERE entry->>'scorerId' = %s LIMIT 1)"
        )
    else:
        sql = (
            f"(SELECT json_extract(entry.value, '$.score') FROM json_each({column}) entry "
            "WHERE json_extract(entry.value, '$.scorerId') = %s LIMIT 1)"
        )
    return RawSQL(sql, (scorer_id,), output_field=FloatField())


class DatasetRunResultQuerySet(models.QuerySet["DatasetRunResult"]):
    def in_dataset_order(self) -> Self:
        """Items in the order they were added (ids are time-ordered; the unique
        (run, item, repetition) index serves it)."""
        return self.order_by("item_id", "repetition")

    def in_display_order(self) -> Self:
        """The order the API contract lists results in: by start time, then id."""
        return self.order_by("started_at", "id")

    def failed(self) -> Self:
        return self.filter(error__isnull=False)

    def scored_below(self, scorer_id: str, threshold: float) -> Self:
        return self.annotate(filter_score=score_of(scorer_id)).filter(filter_score__lt=threshold)

    def ordered_by_score(self, scorer_id: str, *, descending: bool = False) -> Self:
        """By one scorer's score (unscored results last), then dataset order."""
        score = F("sort_score")
        ordering = score.desc(nulls_last=True) if descending else score.asc(nulls_last=True)
        return self.annotate(sort_score=score_of(scorer_id)).order_by(ordering, "item_id", "repetition")

    def ordered_by_latency(self, *, descending: bool = False) -> Self:
        return self.order_by("-latency" if descending else "latency", "item_id", "repetition")

    def ordered_by_annotation(self, name: str, *, descending: bool = False) -> Self:
        """By the mean score of one annotation name over its reviewers (results
        without one last), then dataset order; the (result, name, author) index serves each lookup."""
        mean = (
            Annotation.objects.filter(result_id=OuterRef("pk"), name=name)
            .values("result_id")
            .annotate(mean=models.Avg("score"))
            .values("mean")[:1]
        )
        score = F("sort_annotation")
        ordering = score.desc(nulls_last=True) if descending else score.asc(nulls_last=True)
        return self.annotate(sort_annotation=Subquery(mean, output_field=FloatField())).order_by(
            ordering, "item_id", "repetition"
        )


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
    error = models.TextField(null=True, blank=True)  # noqa: DJ001 — null is "succeeded", as the API answers it
    retry_count = models.PositiveIntegerField(default=0)
    # Traces are found by their own id (Trace.trace_id), so no index here.
    trace_id = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001 — null is "no trace", as the API answers it
    scores = models.JSONField(default=list, blank=True)
    usage = models.JSONField(null=True, blank=True, help_text="Token usage reported by the target")
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DatasetRunResultQuerySet.as_manager()

    class Meta:
        # No default ordering: the engine inserts thousands of these a second and
        # aggregates over them; lists say their order (`in_display_order`).
        constraints = [
            models.UniqueConstraint(fields=["run", "item", "repetition"], name="result_once_per_item"),
        ]
        indexes = [
            models.Index(fields=["run", "started_at", "id"], name="result_page_idx"),
            # Latency percentiles and "sort by latency" on the run page.
            models.Index(fields=["run", "latency"], name="result_latency_idx"),
        ]

    def __str__(self) -> str:
        return f"result {self.id}"

    @property
    def succeeded(self) -> bool:
        return self.error is None


class Annotation(models.Model):
    """A person's grade of one result: a score (0..1) and/or a label from the
    dataset's label set, with a comment. One per result, name and author;
    saving again updates it. Annotations sit beside the run: grading a
    finished run changes none of its rows or counters."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    result = models.ForeignKey(DatasetRunResult, on_delete=models.CASCADE, related_name="annotations")
    # The result's run, kept here so a run's means and review progress are one indexed query.
    run = models.ForeignKey(DatasetRun, on_delete=models.CASCADE, related_name="annotations", db_index=False)
    name = models.CharField(max_length=50)
    score = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 — null is "no label", as the API answers it
    comment = models.TextField(blank=True, default="")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["result", "name", "author"], name="annotation_once_per_author"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=1), name="annotation_score_in_range"
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=False) | Q(label__isnull=False), name="annotation_score_or_label"
            ),
        ]
        indexes = [models.Index(fields=["run", "name"], name="annotation_run_idx")]

    def __str__(self) -> str:
        return f"{self.name} on {self.result_id} by {self.author_id}"


class Trace(models.Model):
    """The spans of one item execution, stored with its result for the trace page."""

    trace_id = models.CharField(max_length=32, primary_key=True)
    run = models.ForeignKey(DatasetRun, null=True, blank=True, on_delete=models.CASCADE, related_name="traces")
    result_id = models.UUIDField(null=True, blank=True)
    name = models.CharField(max_length=255)
    # Read only as a whole: stored as JSON text (no jsonb parsing on write).
    spans = OpaqueJSONField(default=list)
    started_at = models.DateTimeField()

    def __str__(self) -> str:
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

    def __str__(self) -> str:
        return f"outbox {self.trace_id}"
