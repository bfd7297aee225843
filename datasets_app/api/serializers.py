"""Wire shapes of the API (docs/api.md).

Field names are written out in camelCase with `source=` pointing at the
model or service keyword, so an input serializer's `validated_data` is the
service call's keywords as they are; user JSON goes through `JSONField`
untouched. Input serializers only check types; the rules (schemas, known
targets, limits) live in `services`.
"""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from datasets_app import annotations
from datasets_app.comparison import HIGHER_IS_BETTER, LOWER_IS_BETTER, MAX_COMPARED_RUNS, ItemFilter, Verdict
from datasets_app.curation import EXPECTED_FROM
from datasets_app.models import DatasetRun, ProjectRole
from datasets_app.runs import registry, summary

from .pagination import PaginationSerializer


class StrictCharField(serializers.CharField):
    """Text that must be sent as a JSON string (DRF's CharField also takes
    numbers); like CharField, it refuses NUL, which PostgreSQL cannot store."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# ---- projects ------------------------------------------------------------------


class ProjectSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=ProjectRole.choices, read_only=True, help_text="The caller's role")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class ProjectWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username", max_length=150)
    role = serializers.ChoiceField(choices=ProjectRole.choices)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        return {"username": value["user"]["username"], "role": value["role"]}


class MemberPathSerializer(serializers.Serializer):
    """The username in a member's path: text a user name can be (no NUL, which
    PostgreSQL cannot even compare with)."""

    username = serializers.CharField(max_length=150, trim_whitespace=False)


class MemberListSerializer(serializers.Serializer):
    members = MemberSerializer(many=True, read_only=True)


# ---- datasets ------------------------------------------------------------------


class AnnotationNameSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="An annotation name reviewers grade results under")
    labels = serializers.ListField(child=serializers.CharField(), help_text="Its label set (may be empty)")


@extend_schema_field(AnnotationNameSerializer(many=True))
class AnnotationConfigField(serializers.JSONField):
    """The dataset's annotation names and label sets, checked by the service
    (`annotations.clean_config`), whose errors name the entry: `annotationConfig/0/name`."""


class DatasetSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    projectId = serializers.UUIDField(source="project_id", read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    metadata = serializers.JSONField(read_only=True, allow_null=True)
    inputSchema = serializers.JSONField(source="input_schema", read_only=True, allow_null=True)
    outputSchema = serializers.JSONField(source="output_schema", read_only=True, allow_null=True)
    annotationConfig = AnnotationConfigField(
        source="annotation_config", read_only=True, help_text="What reviewers grade results with"
    )
    version = serializers.IntegerField(read_only=True)
    itemCount = serializers.IntegerField(source="item_count", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)


class DatasetWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    metadata = serializers.JSONField(required=False, allow_null=True)
    inputSchema = serializers.JSONField(source="input_schema", required=False, allow_null=True)
    outputSchema = serializers.JSONField(source="output_schema", required=False, allow_null=True)
    annotationConfig = AnnotationConfigField(
        source="annotation_config",
        required=False,
        allow_null=True,
        help_text='1 to 10 {name, labels}; default [{"name": "human", "labels": ["good", "bad", "unsure"]}]',
    )


class DatasetCreateSerializer(DatasetWriteSerializer):
    projectId = serializers.UUIDField(
        source="project_id", required=False, allow_null=True, help_text="Default: the caller's personal project"
    )


class DatasetListQuerySerializer(serializers.Serializer):
    projectId = serializers.UUIDField(source="project_id", required=False)


class DatasetVersionSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    datasetId = serializers.UUIDField(source="dataset_id", read_only=True)
    version = serializers.IntegerField(read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


# ---- items ---------------------------------------------------------------------


class ItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    datasetId = serializers.UUIDField(source="dataset_id", read_only=True)
    version = serializers.IntegerField(read_only=True, help_text="The item's own version number")
    input = serializers.JSONField(read_only=True)
    expectedOutput = serializers.JSONField(source="expected_output", read_only=True, allow_null=True)
    context = serializers.JSONField(read_only=True, allow_null=True)  # type: ignore[assignment]  # DRF takes declared fields off the class
    metadata = serializers.JSONField(read_only=True, allow_null=True, help_text="The user's own notes on the item")
    split = serializers.CharField(read_only=True, allow_null=True, help_text="The item's split, null for none")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)


class ItemSnapshotSerializer(serializers.Serializer):
    """A DatasetItemVersion shown as the item it was (same shape as ItemSerializer)."""

    id = serializers.UUIDField(source="item_id", read_only=True)
    datasetId = serializers.UUIDField(source="dataset_id", read_only=True)
    version = serializers.IntegerField(source="version_number", read_only=True)
    input = serializers.JSONField(source="snapshot.input", read_only=True)
    expectedOutput = serializers.JSONField(source="snapshot.expectedOutput", read_only=True, allow_null=True)
    context = serializers.JSONField(source="snapshot.context", read_only=True, allow_null=True)  # type: ignore[assignment]  # DRF takes declared fields off the class
    metadata = serializers.JSONField(source="snapshot.metadata", read_only=True, allow_null=True)
    split = serializers.CharField(read_only=True, allow_null=True)
    createdAt = serializers.DateTimeField(source="item.created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="created_at", read_only=True)


SPLIT_HELP = "A split name of at most 50 characters (trimmed); null or blank for none"


class ItemWriteSerializer(serializers.Serializer):
    input = serializers.JSONField()
    expectedOutput = serializers.JSONField(source="expected_output", required=False, allow_null=True)
    context = serializers.JSONField(required=False, allow_null=True)  # type: ignore[assignment]  # DRF takes declared fields off the class
    metadata = serializers.JSONField(required=False, allow_null=True)
    split = StrictCharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False, help_text=SPLIT_HELP
    )


class ItemListQuerySerializer(serializers.Serializer):
    search = serializers.CharField(required=False, allow_blank=True, help_text="Text anywhere in the item")
    version = serializers.IntegerField(
        required=False, min_value=0, help_text="The items as they were at this dataset version"
    )
    split = serializers.CharField(required=False, allow_blank=True, help_text="Only the items of this split")


class BulkItemsWriteSerializer(serializers.Serializer):
    items = ItemWriteSerializer(many=True, allow_empty=False)


class BulkItemsSerializer(serializers.Serializer):
    items = ItemSerializer(many=True)
    count = serializers.IntegerField()


class BulkDeleteSerializer(serializers.Serializer):
    itemIds = serializers.ListField(source="item_ids", child=serializers.UUIDField(), allow_empty=False)


class BulkDeleteResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    deletedCount = serializers.IntegerField()


class ItemSplitSerializer(serializers.Serializer):
    itemIds = serializers.ListField(source="item_ids", child=serializers.UUIDField(), allow_empty=False)
    split = StrictCharField(allow_null=True, allow_blank=True, trim_whitespace=False, help_text=SPLIT_HELP)


class ItemSplitResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    updatedCount = serializers.IntegerField(help_text="Items moved (those already in the split are left alone)")


class ItemsFromResultsSerializer(serializers.Serializer):
    runId = serializers.UUIDField(
        source="run_id", help_text="A run of this dataset or of another dataset of the same project"
    )
    resultIds = serializers.ListField(
        source="result_ids", child=serializers.UUIDField(), help_text="1 to 1000 results of that run"
    )
    expectedFrom = serializers.ChoiceField(
        source="expected_from",
        choices=list(EXPECTED_FROM),
        required=False,
        default="output",
        help_text="The new items' expectedOutput: the result's output, or the expected output it was run with",
    )
    split = StrictCharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False, help_text=SPLIT_HELP
    )


class ItemVersionSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    itemId = serializers.UUIDField(source="item_id", read_only=True)
    datasetId = serializers.UUIDField(source="dataset_id", read_only=True)
    versionNumber = serializers.IntegerField(source="version_number", read_only=True)
    datasetVersion = serializers.IntegerField(source="dataset_version", read_only=True)
    snapshot = serializers.JSONField(read_only=True, help_text="{input, expectedOutput, context, metadata, split}")
    isDeleted = serializers.BooleanField(source="is_deleted", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


# ---- runs ----------------------------------------------------------------------


@extend_schema_field({"type": "string", "nullable": True})
class BlankAsNullField(serializers.CharField):
    """A text column whose empty value means "none": answered as null."""

    def to_representation(self, value: str) -> Any:
        return value or None


class ScorerSummarySerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()
    passRate = serializers.FloatField(source="pass_rate", allow_null=True, help_text="Share of scores >= 0.5")


class LatencySummarySerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True)


class UsageSerializer(serializers.Serializer):
    promptTokens = serializers.IntegerField(source="prompt_tokens")
    completionTokens = serializers.IntegerField(source="completion_tokens")
    totalTokens = serializers.IntegerField(source="total_tokens")


class AnnotationSummarySerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True, help_text="Mean of the annotation scores given")
    count = serializers.IntegerField(help_text="Annotations given (with a score, a label or both)")
    labels = serializers.DictField(child=serializers.IntegerField(), help_text="{label: how often it was given}")


class RunSummarySerializer(serializers.Serializer):
    """The run's figures as every page, poll and the CLI show them (from the run row),
    and what reviewers made of its results (from its annotations)."""

    scorers = serializers.DictField(child=ScorerSummarySerializer())
    latency = LatencySummarySerializer(help_text="Milliseconds; percentiles within 1.1 %")
    usage = UsageSerializer(allow_null=True)
    cost = serializers.FloatField(allow_null=True, help_text="From PLAYGROUND_MODEL_PRICES; null when unpriced")
    annotations = serializers.DictField(
        child=AnnotationSummarySerializer(), help_text="{annotation name: its figures}, for the names given"
    )


class RunSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    datasetId = serializers.UUIDField(source="dataset_id", read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    metadata = serializers.JSONField(read_only=True, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    datasetVersion = serializers.IntegerField(source="dataset_version", read_only=True)
    targetType = serializers.ChoiceField(source="target_type", choices=DatasetRun.TargetType.choices, read_only=True)
    targetId = serializers.CharField(source="target_id", read_only=True)
    scorerIds = serializers.ListField(source="scorer_ids", child=serializers.CharField(), read_only=True)
    status = serializers.ChoiceField(choices=DatasetRun.Status.choices, read_only=True)
    totalItems = serializers.IntegerField(source="total_items", read_only=True)
    succeededCount = serializers.IntegerField(source="succeeded_count", read_only=True)
    failedCount = serializers.IntegerField(source="failed_count", read_only=True)
    maxConcurrency = serializers.IntegerField(source="max_concurrency", read_only=True)
    itemTimeout = serializers.FloatField(source="item_timeout", read_only=True, allow_null=True)
    maxRetries = serializers.IntegerField(source="max_retries", read_only=True)
    repetitions = serializers.IntegerField(read_only=True)
    split = serializers.CharField(read_only=True, allow_null=True, help_text="The split it ran on; null for every item")
    rerunOf = serializers.UUIDField(source="rerun_of_id", read_only=True, allow_null=True)
    error = BlankAsNullField(read_only=True, help_text="Why the run as a whole failed")
    startedAt = serializers.DateTimeField(source="started_at", read_only=True, allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", read_only=True, allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)
    summary = serializers.SerializerMethodField()

    @extend_schema_field(RunSummarySerializer)
    def get_summary(self, run: DatasetRun) -> dict[str, Any]:
        """A list view gives every run's annotation figures at once
        (`context["annotation_stats"]`, from one `annotations.run_stats` call)."""
        usage = summary.usage_summary(run)
        if "annotation_stats" in self.context:
            reviewed = self.context["annotation_stats"].get(run.pk, {})
        else:
            reviewed = annotations.run_stats([run.pk]).get(run.pk, {})
        return RunSummarySerializer(
            {
                "scorers": {stats.scorer_id: stats for stats in summary.scorer_stats(run)},
                "latency": summary.latency_summary(run),
                "usage": usage,
                "cost": usage.cost if usage else None,
                "annotations": {name: stats.as_summary() for name, stats in reviewed.items()},
            }
        ).data


class RunListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=DatasetRun.Status.choices, required=False)
    tag = serializers.CharField(required=False, max_length=50, help_text="Only runs with this tag")


class RunWriteSerializer(serializers.Serializer):
    """What names a run: set at start, editable with PATCH."""

    name = serializers.CharField(max_length=255, required=False, help_text="Default: target and start time")
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    metadata = serializers.JSONField(required=False, allow_null=True)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50, allow_blank=True), required=False, max_length=20
    )


class RunStartSerializer(RunWriteSerializer):
    """The body of a run start; what is left out takes `services.run_start`'s default."""

    targetType = serializers.ChoiceField(source="target_type", choices=DatasetRun.TargetType.choices)
    targetId = serializers.CharField(source="target_id", max_length=255)
    scorerIds = serializers.ListField(source="scorer_ids", child=serializers.CharField(), required=False)
    version = serializers.IntegerField(required=False, allow_null=True, help_text="Dataset version (default: current)")
    maxConcurrency = serializers.IntegerField(source="max_concurrency", required=False, help_text="Default 5")
    itemTimeout = serializers.FloatField(
        source="item_timeout", required=False, allow_null=True, help_text="Seconds per attempt"
    )
    maxRetries = serializers.IntegerField(source="max_retries", required=False, help_text="Default 0")
    repetitions = serializers.IntegerField(required=False, help_text="Default 1")
    split = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Run only the items of this split (at the version); default every item",
    )


class RunStartedSerializer(serializers.Serializer):
    """The answer to starting a run (the shape clients of the modelled API expect)."""

    runId = serializers.UUIDField(source="id", read_only=True)
    status = serializers.ChoiceField(choices=DatasetRun.Status.choices, read_only=True)
    totalItems = serializers.IntegerField(source="total_items", read_only=True)
    succeededCount = serializers.IntegerField(source="succeeded_count", read_only=True)
    failedCount = serializers.IntegerField(source="failed_count", read_only=True)
    startedAt = serializers.DateTimeField(source="started_at", read_only=True, allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", read_only=True, allow_null=True)
    results = serializers.SerializerMethodField()

    @extend_schema_field({"type": "array", "items": {"type": "object"}, "maxItems": 0})
    def get_results(self, run: DatasetRun) -> list[Any]:
        return []


# ---- results -------------------------------------------------------------------


class ScoreSerializer(serializers.Serializer):
    scorerId = serializers.CharField()
    scorerName = serializers.CharField()
    score = serializers.FloatField(allow_null=True, help_text="0..1, null when the scorer failed")
    reason = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


@extend_schema_field(ScoreSerializer(many=True))
class ScoresField(serializers.JSONField):
    """A result's scores in the contract's shape, whatever keys the engine left out."""

    KEYS = ("scorerId", "scorerName", "score", "reason", "error")

    def to_representation(self, value: Any) -> Any:
        return [{key: score.get(key) for key in self.KEYS} for score in value or []]


class AnnotationSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    resultId = serializers.UUIDField(source="result_id", read_only=True)
    name = serializers.CharField(read_only=True)
    score = serializers.FloatField(read_only=True, allow_null=True, help_text="0..1, null when only labelled")
    label = serializers.CharField(read_only=True, allow_null=True, help_text="From the name's label set, or null")  # type: ignore[assignment]  # DRF takes declared fields off the class
    comment = serializers.CharField(read_only=True)
    author = serializers.CharField(source="author.username", read_only=True, help_text="The reviewer's username")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)


class AnnotationListSerializer(serializers.Serializer):
    annotations = AnnotationSerializer(many=True, read_only=True)


@extend_schema_field({"type": "number", "minimum": 0, "maximum": 1, "nullable": True})
class ScoreInputField(serializers.JSONField):
    """An annotation score as sent: the service checks it is a number (not a
    boolean) in 0..1, and names `score` when it is not."""


class AnnotationWriteSerializer(serializers.Serializer):
    """Checks only types; the names, labels and ranges are the service's (`annotations.annotation_save`)."""

    name = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="One of the dataset's annotation names (default: its first)",
    )
    score = ScoreInputField(required=False, allow_null=True, help_text="0..1 or null")
    label = StrictCharField(  # type: ignore[assignment]  # DRF takes declared fields off the class
        required=False, allow_null=True, allow_blank=True, help_text="One of the name's labels, or null"
    )
    comment = StrictCharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)


class ResultSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    runId = serializers.UUIDField(source="run_id", read_only=True)
    itemId = serializers.UUIDField(source="item_id", read_only=True)
    itemVersion = serializers.IntegerField(source="item_version", read_only=True)
    repetition = serializers.IntegerField(read_only=True)
    input = serializers.JSONField(read_only=True, allow_null=True)
    output = serializers.JSONField(read_only=True, allow_null=True)
    expectedOutput = serializers.JSONField(source="expected_output", read_only=True, allow_null=True)
    latency = serializers.FloatField(read_only=True, help_text="Milliseconds")
    error = serializers.CharField(read_only=True, allow_null=True, help_text="null on success")
    startedAt = serializers.DateTimeField(source="started_at", read_only=True)
    completedAt = serializers.DateTimeField(source="completed_at", read_only=True)
    retryCount = serializers.IntegerField(source="retry_count", read_only=True)
    traceId = serializers.CharField(
        source="trace_id", read_only=True, allow_null=True, help_text="32-hex trace id, null when none was produced"
    )
    scores = ScoresField(read_only=True)
    annotations = AnnotationSerializer(many=True, read_only=True, help_text="What reviewers made of it")
    usage = serializers.JSONField(read_only=True, allow_null=True, help_text="Token usage reported by the target")
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)


# ---- comparison ----------------------------------------------------------------


class ThresholdSerializer(serializers.Serializer):
    value = serializers.FloatField(min_value=0)
    direction = serializers.ChoiceField(
        choices=[HIGHER_IS_BETTER, LOWER_IS_BETTER], required=False, default=HIGHER_IS_BETTER
    )


class CompareRunsSerializer(serializers.Serializer):
    baselineRunId = serializers.UUIDField(source="baseline_run_id")
    runIds = serializers.ListField(
        source="run_ids",
        child=serializers.UUIDField(),
        min_length=1,
        max_length=MAX_COMPARED_RUNS,
        help_text=f"1 to {MAX_COMPARED_RUNS} runs of the dataset to compare with the baseline",
    )
    thresholds = serializers.DictField(child=ThresholdSerializer(), required=False, default=dict)
    minDelta = serializers.FloatField(
        source="min_delta", required=False, default=0.0, min_value=0, help_text="A smaller move is unchanged"
    )
    itemFilter = serializers.ChoiceField(
        source="item_filter",
        choices=[f.value for f in ItemFilter],
        required=False,
        allow_null=True,
        help_text="Keep only the items regressed, improved or changed in some run",
    )


class CompareRunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    datasetVersion = serializers.IntegerField(source="dataset_version")


class ScorerStatsSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField(help_text="Scores given")
    passRate = serializers.FloatField(source="pass_rate", allow_null=True, help_text="Share of scores >= 0.5")
    errors = serializers.IntegerField(help_text="Scores the scorer failed to give")  # type: ignore[assignment]  # DRF takes declared fields off the class


class ScorerDeltaSerializer(serializers.Serializer):
    stats = ScorerStatsSerializer(help_text="The run's own figures, over all its results")
    sharedCount = serializers.IntegerField(source="shared_count", help_text="Items both runs scored")
    baselineMean = serializers.FloatField(source="baseline_mean", allow_null=True, help_text="Over the shared items")
    mean = serializers.FloatField(allow_null=True, help_text="Over the shared items")
    delta = serializers.FloatField(allow_null=True, help_text="mean − baselineMean")
    ci95 = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        min_length=2,
        max_length=2,
        help_text="95 % interval of the paired per-item differences; null under 2 shared items",
    )
    verdict = serializers.ChoiceField(choices=[v.value for v in Verdict])
    threshold = ThresholdSerializer(help_text="The tolerance applied: max(threshold, minDelta)")


class LatencyDeltaSerializer(serializers.Serializer):
    baselineMean = serializers.FloatField(source="baseline_mean", allow_null=True)
    mean = serializers.FloatField(allow_null=True)
    deltaMean = serializers.FloatField(source="delta_mean", allow_null=True)
    baselineP50 = serializers.FloatField(source="baseline_p50", allow_null=True)
    p50 = serializers.FloatField(allow_null=True)
    deltaP50 = serializers.FloatField(source="delta_p50", allow_null=True)


class UsageDeltaSerializer(serializers.Serializer):
    baselineTokens = serializers.FloatField(source="baseline_tokens", allow_null=True, help_text="Mean per item")
    tokens = serializers.FloatField(allow_null=True)
    deltaTokens = serializers.FloatField(source="delta_tokens", allow_null=True)
    baselineCost = serializers.FloatField(source="baseline_cost", allow_null=True, help_text="Mean per item")
    cost = serializers.FloatField(allow_null=True)
    deltaCost = serializers.FloatField(source="delta_cost", allow_null=True)


class RunComparisonSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="run.id")
    name = serializers.CharField(source="run.name")
    datasetVersion = serializers.IntegerField(source="run.dataset_version")
    versionMismatch = serializers.BooleanField(source="version_mismatch")
    hasRegression = serializers.BooleanField(source="has_regression")
    sharedItems = serializers.IntegerField(source="shared_items", help_text="Items this run and the baseline ran")
    onlyInRun = serializers.IntegerField(source="only_in_run")
    onlyInBaseline = serializers.IntegerField(source="only_in_baseline")
    scorers = serializers.DictField(child=ScorerDeltaSerializer())
    latency = LatencyDeltaSerializer(help_text="Over the shared items, milliseconds")
    usage = UsageDeltaSerializer(help_text="Over the shared items with usage")


class ItemComparisonSerializer(serializers.Serializer):
    itemId = serializers.UUIDField(source="item_id")
    scores = serializers.SerializerMethodField(help_text="{runId: {scorerId: score}}")

    @extend_schema_field(
        serializers.DictField(child=serializers.DictField(child=serializers.FloatField(allow_null=True)))
    )
    def get_scores(self, row: Any) -> dict[str, Any]:
        return {str(run_id): scores for run_id, scores in row.scores().items()}


class ComparisonSerializer(serializers.Serializer):
    baseline = CompareRunSerializer()
    runs = RunComparisonSerializer(many=True)
    hasRegression = serializers.BooleanField(source="has_regression")
    sharedItems = serializers.IntegerField(source="shared_items", help_text="Items the baseline and every run ran")
    items = ItemComparisonSerializer(many=True, help_text="One page of the items (page/perPage query)")
    pagination = serializers.SerializerMethodField(help_text="Paging of `items`")
    warnings = serializers.ListField(child=serializers.CharField())

    @extend_schema_field(PaginationSerializer)
    def get_pagination(self, comparison: Any) -> dict[str, Any]:
        """Given by the view, which pages the items (`context["pagination"]`)."""
        return self.context["pagination"]


# ---- catalogue and traces ----------------------------------------------------


class AvailabilityFields(serializers.Serializer):
    """Whether a target or scorer can run here, and if not, what to set."""

    available = serializers.SerializerMethodField()
    unavailableReason = serializers.SerializerMethodField(help_text="What to set to make it available")

    def get_available(self, entry: Any) -> bool:
        return registry.unavailable_reason(entry) is None

    def get_unavailableReason(self, entry: Any) -> str | None:
        return registry.unavailable_reason(entry)


class TargetSerializer(AvailabilityFields):
    targetType = serializers.CharField(source="target_type")
    targetId = serializers.CharField(source="target_id")
    name = serializers.CharField()
    description = serializers.CharField()


class TargetListSerializer(serializers.Serializer):
    targets = TargetSerializer(many=True)


class ScorerSerializer(AvailabilityFields):
    scorerId = serializers.CharField(source="scorer_id")
    name = serializers.CharField()
    description = serializers.CharField()


class ScorerListSerializer(serializers.Serializer):
    scorers = ScorerSerializer(many=True)


class SpanSerializer(serializers.Serializer):
    spanId = serializers.CharField()
    parentSpanId = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    startTime = serializers.CharField()
    endTime = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["ok", "error", "unset"])
    statusMessage = serializers.CharField(allow_null=True, help_text="Why the span failed, when it says")
    attributes = serializers.DictField()


@extend_schema_field(SpanSerializer(many=True))
class SpansField(serializers.JSONField):
    """Spans are stored in the answer's shape already."""


class TraceSerializer(serializers.Serializer):
    traceId = serializers.CharField(source="trace_id", read_only=True)
    spans = SpansField(read_only=True)
