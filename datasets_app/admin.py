"""Django admin for every model. History (item versions, results, traces) is
read-only: editing it would make past runs lie about what they ran.

Datasets and items are written through `services`, as the API and pages write
them: the forms check what the services check (the same functions, so an
error shows on its field), and saving calls the service, so every item change
writes a new item version and dataset version."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator

from . import annotations, jsonsafe, services
from .exceptions import InvalidInput, PlaygroundError
from .models import (
    Annotation,
    Dataset,
    DatasetItem,
    DatasetItemVersion,
    DatasetRun,
    DatasetRunResult,
    DatasetVersion,
    Project,
    ProjectMembership,
    RunChunk,
    Trace,
    TraceOutbox,
    default_annotation_config,
)
from .runs.tracing import trace_link

PREVIEW_CHARS = 80


def preview(value: Any) -> str:
    """A JSON value on one line, cut to PREVIEW_CHARS (a string as it is): list columns
    show it as text, so the admin escapes it like any other value."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else jsonsafe.encode(value)
    return Truncator(" ".join(text.split())).chars(PREVIEW_CHARS)


def score_summary(scores: Any) -> str:
    """A result's scores, "exact-match 1.00 · contains 0.50" (a failed scorer: "error")."""
    if not isinstance(scores, list) or not scores:
        return "—"
    parts = []
    for entry in scores:
        if not isinstance(entry, dict):
            continue
        score = entry.get("score")
        shown = f"{score:.2f}" if isinstance(score, int | float) and not isinstance(score, bool) else "error"
        parts.append(f"{entry.get('scorerId', '?')} {shown}")
    return " · ".join(parts) or "—"


def _hex_lower(search_term: str) -> str:
    """Hex words of a search lower-cased, as trace ids are stored (other words as typed)."""
    return " ".join(
        word.lower() if all(c in "0123456789abcdefABCDEF" for c in word) else word for word in search_term.split()
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DatasetVersionInline(ReadOnlyInline):
    model = DatasetVersion
    fields = readonly_fields = ("version", "created_at")
    max_num = 20


class DatasetAdminForm(forms.ModelForm):
    """Schemas are checked as the API and pages check them (RE2-compatible patterns)."""

    def clean_input_schema(self) -> Any:
        return self._checked_schema("input_schema")

    def clean_output_schema(self) -> Any:
        return self._checked_schema("output_schema")

    def clean_annotation_config(self) -> Any:
        config = self.cleaned_data.get("annotation_config")
        if config in (None, "", []):  # left blank: the default names and labels
            return default_annotation_config()
        try:
            return annotations.clean_config(config)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from exc

    def _checked_schema(self, field: str) -> Any:
        schema = self.cleaned_data[field]
        try:
            services.check_json_schema(schema, field=field)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.errors[field]) from exc
        return schema


def _changed_json(form: forms.ModelForm, fields: list[str]) -> dict[str, Any]:
    """The fields whose value differs from the form's initial one, as stored JSON
    compares them (key order counts, unlike Django's JSONField.has_changed)."""
    return {
        field: form.cleaned_data[field]
        for field in fields
        if field in form.cleaned_data
        and (field not in form.initial or _stored(form.cleaned_data[field]) != _stored(form.initial[field]))
    }


def _stored(value: Any) -> str | None:
    return None if value is None else jsonsafe.encode(value)


def _adopt(obj: Any, saved: Any) -> None:
    """Make the admin's instance the row the service saved (for its messages and redirect)."""
    for field in type(saved)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    """Staff see and manage every project here (the pages and API show members their own)."""

    list_display = ["name", "personal_for", "member_count", "dataset_count", "created_at"]
    search_fields = ["name", "personal_for__username", "memberships__user__username"]
    readonly_fields = ["id", "created_at"]
    fields = ["id", "name", "personal_for", "created_at"]
    autocomplete_fields = ["personal_for"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                members_total=Count("memberships", distinct=True), datasets_total=Count("datasets", distinct=True)
            )
        )

    @admin.display(description="members", ordering="members_total")
    def member_count(self, project: Any) -> int:
        return project.members_total

    @admin.display(description="datasets", ordering="datasets_total")
    def dataset_count(self, project: Any) -> int:
        return project.datasets_total


@admin.register(ProjectMembership)
class ProjectMembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["project__name", "user__username"]
    autocomplete_fields = ["project", "user"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    form = DatasetAdminForm
    list_display = ["name", "project", "item_count", "version", "created_at", "updated_at"]
    list_filter = ["project"]
    search_fields = ["name", "description", "project__name"]
    readonly_fields = ["id", "version", "item_count", "created_at", "updated_at"]
    fields = [
        "id",
        "project",
        "name",
        "description",
        "metadata",
        "input_schema",
        "output_schema",
        "annotation_config",
        *readonly_fields[1:],
    ]
    autocomplete_fields = ["project"]
    inlines = [DatasetVersionInline]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Dataset | None = None) -> list[str]:
        # A dataset stays in the project it was made in (its runs' access follows it).
        return [*self.readonly_fields, "project"] if obj else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: Dataset, form: forms.ModelForm, change: bool) -> None:
        # The form's fields are the services' keywords.
        if change:
            services.dataset_update(dataset=obj, **form.cleaned_data)
        else:
            _adopt(obj, services.dataset_create(**form.cleaned_data))


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ["dataset", "version", "created_at"]
    list_filter = ["dataset"]
    list_select_related = ["dataset"]
    search_fields = ["dataset__name"]


class DatasetItemAdminForm(forms.ModelForm):
    """An item checked as the API checks it: its JSON passes the gate (the JSON
    form fields parse through `jsonsafe`), and its input and expected output
    must match the dataset's schemas (`services.validate_item_against_schemas`)."""

    class Meta:
        model = DatasetItem
        fields = ["dataset", "input", "expected_output", "context", "metadata", "split"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        item = self.instance
        if item.pk and item.is_deleted:
            raise forms.ValidationError("This item was deleted; deleted items are kept as history.")
        dataset = cleaned.get("dataset") if "dataset" in self.fields else item.dataset
        if dataset is None or "input" not in cleaned or "expected_output" not in cleaned:
            return cleaned  # a field error is shown already
        try:
            services.validate_item_against_schemas(
                dataset=dataset, input=cleaned["input"], expected_output=cleaned["expected_output"]
            )
        except InvalidInput as exc:
            # Keys are the field, then the JSON path inside it: "expected_output/answer".
            for key, problems in exc.errors.items():
                field, _, path = key.partition("/")
                for problem in problems:
                    self.add_error(
                        field if field in self.fields else None, f"at {path}: {problem}" if path else problem
                    )
        return cleaned


@admin.register(DatasetItem)
class DatasetItemAdmin(admin.ModelAdmin):
    """Items are added and changed through the services, so that every change
    writes an item version and a dataset version; deleting is the action below
    (a tombstone and a new version), and a deleted item is read-only."""

    form = DatasetItemAdminForm
    list_display = ["position_label", "input_preview", "dataset", "split", "version", "is_deleted", "updated_at"]
    list_display_links = ["position_label", "input_preview"]
    list_filter = ["is_deleted", "split", "dataset"]
    list_select_related = ["dataset"]
    search_fields = ["input", "expected_output", "context", "dataset__name"]
    autocomplete_fields = ["dataset"]
    JSON_FIELDS = ["input", "expected_output", "context", "metadata"]
    EDITABLE = [*JSON_FIELDS, "split"]
    ALL_FIELDS = ("id", "dataset", "position", "version", *EDITABLE, "is_deleted", "created_at", "updated_at")
    actions = ["delete_with_version"]

    def get_fields(self, request: HttpRequest, obj: DatasetItem | None = None) -> tuple[str, ...]:
        return ("dataset", *self.EDITABLE) if obj is None else self.ALL_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: DatasetItem | None = None) -> list[str]:
        if obj is None:
            return []
        readonly = ["id", "dataset", "position", "version", "is_deleted", "created_at", "updated_at"]
        return readonly + self.EDITABLE if obj.is_deleted else readonly

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a hard delete would erase history; use the action below

    @admin.display(description="#", ordering="position")
    def position_label(self, item: DatasetItem) -> str:
        return f"#{item.position}"

    @admin.display(description="input")
    def input_preview(self, item: DatasetItem) -> str:
        return preview(item.input)

    def save_model(self, request: HttpRequest, obj: DatasetItem, form: forms.ModelForm, change: bool) -> None:
        if change:
            changed = _changed_json(form, self.JSON_FIELDS)
            if "split" in form.changed_data:
                changed["split"] = form.cleaned_data["split"] or None
            if changed:
                _adopt(obj, services.item_update(item=obj, **changed))
            return
        saved = services.item_create(
            dataset=form.cleaned_data["dataset"],
            input=form.cleaned_data["input"],
            expected_output=form.cleaned_data["expected_output"],
            context=form.cleaned_data["context"],
            metadata=form.cleaned_data["metadata"],
            split=form.cleaned_data["split"] or None,
        )
        _adopt(obj, saved)

    @admin.action(description="Delete selected items (writes a new dataset version)")
    def delete_with_version(self, request: HttpRequest, queryset: QuerySet[DatasetItem]) -> None:
        deleted = 0
        for dataset_id in queryset.values_list("dataset_id", flat=True).distinct():
            dataset = Dataset.objects.get(pk=dataset_id)
            deleted += services.items_bulk_delete(
                dataset=dataset, item_ids=list(queryset.filter(dataset_id=dataset_id).values_list("id", flat=True))
            )
        self.message_user(request, f"Deleted {deleted} item(s).", messages.SUCCESS)


@admin.register(DatasetItemVersion)
class DatasetItemVersionAdmin(ReadOnlyAdmin):
    list_display = ["item", "version_number", "dataset", "dataset_version", "valid_until", "is_deleted", "created_at"]
    list_filter = ["is_deleted", "dataset"]
    list_select_related = ["dataset"]
    search_fields = ["snapshot_text"]


class RunChunkInline(ReadOnlyInline):
    model = RunChunk
    ordering = ["index"]
    fields = readonly_fields = (
        "index",
        "item_count",
        "status",
        "lease_owner",
        "lease_expires_at",
        "attempts",
        "crash_counts",
    )
    show_change_link = False


@admin.register(DatasetRun)
class DatasetRunAdmin(ReadOnlyAdmin):
    list_display = ["name_or_id", "dataset", "status", "target", "tag_list", "progress", "created_at", "completed_at"]
    list_filter = ["status", "target_type", "dataset"]
    list_select_related = ["dataset"]
    search_fields = ["name", "tags", "target_id", "dataset__name", "id__exact"]
    date_hierarchy = "created_at"
    readonly_fields = ["results_link"]
    inlines = [RunChunkInline]
    actions = ["cancel_runs"]

    @admin.display(description="run", ordering="name")
    def name_or_id(self, run: DatasetRun) -> str:
        return run.name or str(run.pk)

    @admin.display(description="target", ordering="target_id")
    def target(self, run: DatasetRun) -> str:
        return f"{run.target_type}/{run.target_id}"

    @admin.display(description="tags")
    def tag_list(self, run: DatasetRun) -> str:
        tags = [tag for tag in run.tags if isinstance(tag, str)] if isinstance(run.tags, list) else []
        return ", ".join(tags) or "—"

    @admin.display(description="done / total")
    def progress(self, run: DatasetRun) -> str:
        return f"{run.done_count} / {run.total_items} ({run.failed_count} failed)"

    @admin.display(description="Results")
    def results_link(self, run: DatasetRun) -> str:
        return format_html(
            '<a href="../../../datasetrunresult/?run__id__exact={}">{} results</a>', run.pk, run.done_count
        )

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[DatasetRun]) -> None:
        for run in queryset:
            try:
                services.run_cancel(run=run)
            except PlaygroundError as exc:
                self.message_user(request, f"{run.pk}: {exc.message}", messages.WARNING)


@admin.register(RunChunk)
class RunChunkAdmin(ReadOnlyAdmin):
    list_display = ["run", "index", "item_count", "status", "lease_owner", "lease_expires_at", "attempts", "crashes"]
    list_filter = ["status"]
    search_fields = ["lease_owner"]

    @admin.display(description="items that crashed a worker")
    def crashes(self, chunk: RunChunk) -> int:
        return len(chunk.crash_counts)


@admin.register(TraceOutbox)
class TraceOutboxAdmin(ReadOnlyAdmin):
    """Traces waiting for OTLP export: attempts and the next try show a collector in trouble."""

    list_display = ["trace", "attempts", "next_attempt_at", "created_at"]
    search_fields = ["trace__trace_id"]


@admin.register(DatasetRunResult)
class DatasetRunResultAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "run",
        "item_position",
        "repetition",
        "succeeded",
        "score_list",
        "output_preview",
        "latency",
        "retry_count",
        "trace",
    ]
    list_filter = ["run__status", "run__dataset"]
    list_select_related = ["run", "item"]
    # A trace id is found by its beginning (the 8 characters the pages show are enough).
    search_fields = ["trace_id__startswith", "error", "id__exact"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        return super().get_search_results(request, queryset, _hex_lower(search_term))

    raw_id_fields = ["run", "item"]

    @admin.display(boolean=True)
    def succeeded(self, result: DatasetRunResult) -> bool:
        return result.error is None

    @admin.display(description="item", ordering="item__position")
    def item_position(self, result: DatasetRunResult) -> str:
        return f"#{result.item.position}"

    @admin.display(description="scores")
    def score_list(self, result: DatasetRunResult) -> str:
        return score_summary(result.scores)

    @admin.display(description="output")
    def output_preview(self, result: DatasetRunResult) -> str:
        return preview(result.error) if result.error is not None else preview(result.output)

    @admin.display(description="trace")
    def trace(self, result: DatasetRunResult) -> str:
        if not result.trace_id:
            return "—"
        return format_html('<a href="{}">{}</a>', trace_link(result.trace_id), result.trace_id[:8])


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    """People's grades of results: written from the review pages and the API
    (which check the dataset's names and labels); here they can be read and deleted."""

    list_display = ["name", "score", "label", "author", "result", "run", "updated_at"]
    list_filter = ["name", "label"]
    list_select_related = ["author", "run", "result"]
    search_fields = ["name", "label", "comment", "author__username", "run__name"]
    date_hierarchy = "updated_at"


@admin.register(Trace)
class TraceAdmin(ReadOnlyAdmin):
    list_display = ["trace_id", "name", "run", "started_at", "span_count"]
    # By the id's beginning: `trace_id__startswith` (ids are lower-case hex), which the
    # primary key's index serves, unlike `^trace_id` (istartswith compares upper-cased).
    search_fields = ["trace_id__startswith", "name"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        return super().get_search_results(request, queryset, _hex_lower(search_term))

    raw_id_fields = ["run"]

    @admin.display(description="spans")
    def span_count(self, trace: Trace) -> int:
        return len(trace.spans)
