"""API views: read the request, call a service or a query, answer (docs/api.md).

Rules live in `services` (writes) and the models' QuerySets (reads); a
service's InvalidInput/StateConflict becomes a 400/409 in `errors.py`.
"""

from typing import Any, cast
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets_app import access, annotations, comparison, curation, projects, services
from datasets_app.exceptions import InvalidInput
from datasets_app.models import (
    Annotation,
    Dataset,
    DatasetItem,
    DatasetItemVersion,
    DatasetRun,
    DatasetRunResult,
    Project,
    ProjectMembership,
    ProjectRole,
)
from datasets_app.runs import registry

from . import serializers as s
from .pagination import MAX_PER_PAGE, PagePagination, PageQuerySerializer, envelope_serializer
from .parsers import LimitedJSONParser
from .throttles import with_run_start_budget


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    errors = serializers.DictField(  # type: ignore[assignment]  # DRF takes declared fields off the class
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Field errors keyed by camelCase path, e.g. "input/question" or "items/0/input"',
    )


def errors(*codes: int) -> dict[int, type[ErrorSerializer]]:
    return dict.fromkeys((401, 403, *codes), ErrorSerializer)


class TokenChallenge:
    """Anonymous callers get 401 with a Token challenge rather than a bare 403."""

    def get_authenticate_header(self, request: Request) -> str:
        return TokenAuthentication.keyword


class ApiView(TokenChallenge, APIView):
    parser_classes = [LimitedJSONParser]

    def scoped_dataset(self, dataset_id: UUID, *, needs: ProjectRole | None = None) -> Dataset:
        """The dataset, if the caller's role in its project allows the request:
        reads need a viewer, writes an editor (404 outside the caller's projects, 403
        for too low a role)."""
        if needs is None:
            needs = access.VIEWER if self.request.method in SAFE_METHODS else access.EDITOR
        return access.dataset_for(self.request.user, dataset_id, needs=needs)


class SchemaView(TokenChallenge, SpectacularAPIView):
    """The OpenAPI document, for signed-in callers."""

    permission_classes = [IsAuthenticated]
    parser_classes = [LimitedJSONParser]


class ListApiView(ApiView, GenericAPIView):
    """A contract list: `get_queryset()` one page at a time, under `list_key`."""

    pagination_class = PagePagination
    list_key: str

    def known_total(self) -> int | None:
        """The list's length when the view knows it without counting."""
        return None

    def list(self) -> Response:
        rows = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


def get_run(dataset: Dataset, run_id: UUID) -> DatasetRun:
    return get_object_or_404(DatasetRun, dataset=dataset, pk=run_id)


def get_live_item(dataset: Dataset, item_id: UUID) -> DatasetItem:
    return get_object_or_404(DatasetItem.objects.live(), dataset=dataset, pk=item_id)


def validated(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    """The body or query checked by the serializer: a 400 naming the field, or its validated data."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def get_result(dataset: Dataset, run_id: UUID, result_id: UUID) -> DatasetRunResult:
    """A result of that run of that dataset (404 otherwise), in one query."""
    return get_object_or_404(DatasetRunResult, pk=result_id, run_id=run_id, run__dataset=dataset)


def with_annotations(results: QuerySet[DatasetRunResult]) -> QuerySet[DatasetRunResult]:
    """The results with their annotations and the annotations' authors: one query more for a whole page."""
    return results.prefetch_related(
        Prefetch("annotations", queryset=Annotation.objects.select_related("author").order_by("created_at", "id"))
    )


TAG_PROJECTS, TAG_DATASETS, TAG_ITEMS, TAG_RUNS, TAG_CATALOGUE = "projects", "datasets", "items", "runs", "catalogue"
TAG_REVIEW = "review"


# ---- datasets ------------------------------------------------------------------


class DatasetListView(ListApiView):
    list_key = "datasets"
    serializer_class = s.DatasetSerializer

    def get_queryset(self) -> QuerySet[Any]:
        datasets = Dataset.objects.visible_to(self.request.user)
        return datasets.filter(project_id=self.project_id) if self.project_id else datasets

    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="listDatasets",
        description="The datasets of the caller's projects (of one project with `projectId`), newest first.",
        parameters=[PageQuerySerializer, s.DatasetListQuerySerializer],
        responses={200: envelope_serializer("datasets", s.DatasetSerializer), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        self.project_id = validated(s.DatasetListQuerySerializer, request.query_params).get("project_id")
        return self.list()

    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="createDataset",
        description="In the project `projectId` (the caller needs to be an editor there), by default the caller's personal project.",
        request=s.DatasetCreateSerializer,
        responses={201: s.DatasetSerializer, **errors(400, 403, 404, 413)},
    )
    def post(self, request: Request) -> Response:
        body = validated(s.DatasetCreateSerializer, request.data)
        project_id = body.pop("project_id", None)
        project = (
            access.project_for(request.user, project_id, needs=access.EDITOR)
            if project_id
            else projects.personal_project(request.user)
        )
        dataset = services.dataset_create(project=project, **body)
        return Response(s.DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(ApiView):
    @extend_schema(tags=[TAG_DATASETS], operation_id="getDataset", responses={200: s.DatasetSerializer, **errors(404)})
    def get(self, request: Request, datasetId: UUID) -> Response:
        return Response(s.DatasetSerializer(self.scoped_dataset(datasetId)).data)

    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="updateDataset",
        request=s.DatasetWriteSerializer(partial=True),
        responses={200: s.DatasetSerializer, **errors(400, 404, 413)},
    )
    def patch(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        dataset = services.dataset_update(
            dataset=dataset, **validated(s.DatasetWriteSerializer, request.data, partial=True)
        )
        return Response(s.DatasetSerializer(dataset).data)

    @extend_schema(
        tags=[TAG_DATASETS], operation_id="deleteDataset", responses={200: s.SuccessSerializer, **errors(404)}
    )
    def delete(self, request: Request, datasetId: UUID) -> Response:
        services.dataset_delete(dataset=self.scoped_dataset(datasetId))
        return Response({"success": True})


class DatasetVersionListView(ListApiView):
    list_key = "versions"
    serializer_class = s.DatasetVersionSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return self.dataset.versions.order_by("-version")

    def known_total(self) -> int:
        return self.dataset.version

    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="listDatasetVersions",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("versions", s.DatasetVersionSerializer), **errors(400, 404)},
    )
    def get(self, request: Request, datasetId: UUID) -> Response:
        self.dataset = self.scoped_dataset(datasetId)
        return self.list()


# ---- items ---------------------------------------------------------------------


class ItemListView(ListApiView):
    """The live items, or with `version` the snapshots of the items at that dataset version."""

    list_key = "items"

    def get_queryset(self) -> QuerySet[Any]:
        if self.version is None:
            return self.dataset.items.live().in_split(self.split).search(self.search).order_by("-created_at", "-id")
        return (
            DatasetItemVersion.objects.at_version(self.dataset, self.version)
            .in_split(self.split)
            .search(self.search)
            .newest_items_first()
        )

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return s.ItemSerializer if self.version is None else s.ItemSnapshotSerializer

    def known_total(self) -> int | None:
        return self.dataset.item_count if self.version is None and not self.search and self.split is None else None

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="listItems",
        parameters=[PageQuerySerializer, s.ItemListQuerySerializer],
        responses={200: envelope_serializer("items", s.ItemSerializer), **errors(400, 404)},
    )
    def get(self, request: Request, datasetId: UUID) -> Response:
        self.dataset = self.scoped_dataset(datasetId)
        query = validated(s.ItemListQuerySerializer, request.query_params)
        self.search, self.version = query.get("search", ""), query.get("version")
        self.split = query.get("split") or None
        if self.version is not None and self.version > self.dataset.version:
            raise ValidationError({"version": [f"The dataset has versions 0 to {self.dataset.version}."]})
        return self.list()

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="createItem",
        request=s.ItemWriteSerializer,
        responses={201: s.ItemSerializer, **errors(400, 404, 413)},
    )
    def post(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        item = services.item_create(dataset=dataset, **validated(s.ItemWriteSerializer, request.data))
        return Response(s.ItemSerializer(item).data, status=status.HTTP_201_CREATED)


class ItemBulkView(ApiView):
    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="bulkCreateItems",
        description="Adds every item or none, as one dataset version.",
        request=s.BulkItemsWriteSerializer,
        responses={201: s.BulkItemsSerializer, **errors(400, 404, 413)},
    )
    def post(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        body = validated(s.BulkItemsWriteSerializer, request.data)
        created = services.items_bulk_create(dataset=dataset, items=body["items"])
        return Response(
            {"items": s.ItemSerializer(created, many=True).data, "count": len(created)}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="bulkDeleteItems",
        request=s.BulkDeleteSerializer,
        responses={200: s.BulkDeleteResultSerializer, **errors(400, 404, 413)},
    )
    def delete(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        deleted = services.items_bulk_delete(dataset=dataset, **validated(s.BulkDeleteSerializer, request.data))
        return Response({"success": True, "deletedCount": deleted})


class ItemSplitView(ApiView):
    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="setItemsSplit",
        description=(
            "Puts the given live items in one split (`null`: no split), as one dataset version. "
            "Ids of items not in the dataset, and items already in the split, are left alone."
        ),
        request=s.ItemSplitSerializer,
        responses={200: s.ItemSplitResultSerializer, **errors(400, 404, 413)},
    )
    def post(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        updated = services.items_set_split(dataset=dataset, **validated(s.ItemSplitSerializer, request.data))
        return Response({"success": True, "updatedCount": updated})


def readable_run(user: Any, run_id: UUID) -> DatasetRun:
    """A run of any dataset the user may read, named in a body: one they cannot
    see is "not found" under `runId` (400, as any bad field), whether it exists or not."""
    dataset_id = DatasetRun.objects.filter(pk=run_id).values_list("dataset_id", flat=True).first()
    try:
        if dataset_id is None:
            raise Http404
        return access.run_for(user, dataset_id, run_id, needs=access.VIEWER)
    except (Http404, PermissionDenied):
        message = "Run not found."
        raise InvalidInput(f"Invalid runId: {message}", {"runId": [message]}) from None


class ItemsFromResultsView(ApiView):
    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="createItemsFromResults",
        description=(
            "Adds one item per result, all or none, as one dataset version: the result's input, the item's "
            "context as the run saw it, and as expected output the result's output (`expectedFrom: output`) "
            "or the expected output it ran with (`expected`). The item's `metadata.source` names the run, "
            "result, dataset and item it came from. The run may belong to another dataset of the same project "
            "(the caller needs to be able to read it)."
        ),
        request=s.ItemsFromResultsSerializer,
        responses={201: s.BulkItemsSerializer, **errors(400, 404, 413)},
    )
    def post(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        body = validated(s.ItemsFromResultsSerializer, request.data)
        run = readable_run(request.user, body.pop("run_id"))
        created = curation.items_from_results(dataset=dataset, run=run, **body)
        return Response(
            {"items": s.ItemSerializer(created, many=True).data, "count": len(created)}, status=status.HTTP_201_CREATED
        )


class ItemDetailView(ApiView):
    @extend_schema(tags=[TAG_ITEMS], operation_id="getItem", responses={200: s.ItemSerializer, **errors(404)})
    def get(self, request: Request, datasetId: UUID, itemId: UUID) -> Response:
        return Response(s.ItemSerializer(get_live_item(self.scoped_dataset(datasetId), itemId)).data)

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="updateItem",
        request=s.ItemWriteSerializer(partial=True),
        responses={200: s.ItemSerializer, **errors(400, 404, 409, 413)},
    )
    def patch(self, request: Request, datasetId: UUID, itemId: UUID) -> Response:
        item = get_live_item(self.scoped_dataset(datasetId), itemId)
        item = services.item_update(item=item, **validated(s.ItemWriteSerializer, request.data, partial=True))
        return Response(s.ItemSerializer(item).data)

    @extend_schema(tags=[TAG_ITEMS], operation_id="deleteItem", responses={200: s.SuccessSerializer, **errors(404)})
    def delete(self, request: Request, datasetId: UUID, itemId: UUID) -> Response:
        services.item_delete(item=get_live_item(self.scoped_dataset(datasetId), itemId))
        return Response({"success": True})


class ItemVersionListView(ListApiView):
    list_key = "versions"
    serializer_class = s.ItemVersionSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return self.item.versions.order_by("-version_number")

    def known_total(self) -> int:
        return self.item.version

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="listItemVersions",
        description="Every snapshot of the item, newest first; a delete leaves a tombstone (`isDeleted`).",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("versions", s.ItemVersionSerializer), **errors(400, 404)},
    )
    def get(self, request: Request, datasetId: UUID, itemId: UUID) -> Response:
        self.item = get_object_or_404(DatasetItem, dataset=self.scoped_dataset(datasetId), pk=itemId)
        return self.list()


# ---- runs ----------------------------------------------------------------------


class RunListView(ListApiView):
    list_key = "runs"
    serializer_class = s.RunSerializer
    throttle_classes = with_run_start_budget()

    def list(self) -> Response:
        rows = self.paginate_queryset(self.get_queryset()) or []
        context = {**self.get_serializer_context(), "annotation_stats": annotations.run_stats(r.pk for r in rows)}
        return self.get_paginated_response(self.get_serializer(rows, many=True, context=context).data)

    def get_queryset(self) -> QuerySet[Any]:
        runs = self.dataset.runs.order_by("-created_at", "-id")
        if self.query.get("status"):
            runs = runs.filter(status=self.query["status"])
        if self.query.get("tag"):
            runs = runs.with_tag(self.query["tag"])
        return runs

    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="listRuns",
        description="Newest first.",
        parameters=[PageQuerySerializer, s.RunListQuerySerializer],
        responses={200: envelope_serializer("runs", s.RunSerializer), **errors(400, 404)},
    )
    def get(self, request: Request, datasetId: UUID) -> Response:
        self.dataset = self.scoped_dataset(datasetId)
        self.query = validated(s.RunListQuerySerializer, request.query_params)
        return self.list()

    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="startRun",
        description="Records a pending run and queues it for the workers.",
        request=s.RunStartSerializer,
        responses={201: s.RunStartedSerializer, **errors(400, 404, 413)},
    )
    def post(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        run = services.run_start(dataset=dataset, user=request.user, **validated(s.RunStartSerializer, request.data))
        return Response(s.RunStartedSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailView(ApiView):
    @extend_schema(tags=[TAG_RUNS], operation_id="getRun", responses={200: s.RunSerializer, **errors(404)})
    def get(self, request: Request, datasetId: UUID, runId: UUID) -> Response:
        return Response(s.RunSerializer(get_run(self.scoped_dataset(datasetId), runId)).data)

    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="updateRun",
        description="Rename, describe or tag a run, at any status (what it did does not change).",
        request=s.RunWriteSerializer,
        responses={200: s.RunSerializer, **errors(400, 404, 413)},
    )
    def patch(self, request: Request, datasetId: UUID, runId: UUID) -> Response:
        run = get_run(self.scoped_dataset(datasetId), runId)
        run = services.run_update(run=run, **validated(s.RunWriteSerializer, request.data, partial=True))
        return Response(s.RunSerializer(run).data)


class RunCancelView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="cancelRun",
        request=None,
        responses={200: s.RunSerializer, **errors(404, 409)},
    )
    def post(self, request: Request, datasetId: UUID, runId: UUID) -> Response:
        run = services.run_cancel(run=get_run(self.scoped_dataset(datasetId), runId))
        return Response(s.RunSerializer(run).data)


class RunRerunFailedView(ApiView):
    throttle_classes = with_run_start_budget()

    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="rerunFailedItems",
        description="Starts a new run over the items that failed in this finished run.",
        request=None,
        responses={201: s.RunStartedSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request, datasetId: UUID, runId: UUID) -> Response:
        run = get_run(self.scoped_dataset(datasetId), runId)
        rerun = services.run_rerun_failed(run=run, user=request.user)
        return Response(s.RunStartedSerializer(rerun).data, status=status.HTTP_201_CREATED)


class RunResultListView(ListApiView):
    list_key = "results"
    serializer_class = s.ResultSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return with_annotations(DatasetRunResult.objects.filter(run=self.run).in_display_order())

    def known_total(self) -> int:
        # Exact: the counters move in the transaction that writes the rows (no COUNT per poll).
        return self.run.done_count

    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="listRunResults",
        description="Ordered by startedAt, then id.",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("results", s.ResultSerializer), **errors(400, 404)},
    )
    def get(self, request: Request, datasetId: UUID, runId: UUID) -> Response:
        self.run = get_run(self.scoped_dataset(datasetId), runId)
        return self.list()


# ---- human review ----------------------------------------------------------------


class AnnotationListView(ApiView):
    @extend_schema(
        tags=[TAG_REVIEW],
        operation_id="listAnnotations",
        description="Every reviewer's annotations of the result, oldest first.",
        responses={200: s.AnnotationListSerializer, **errors(404)},
    )
    def get(self, request: Request, datasetId: UUID, runId: UUID, resultId: UUID) -> Response:
        result = get_result(self.scoped_dataset(datasetId), runId, resultId)
        rows = result.annotations.select_related("author").order_by("created_at", "id")
        return Response({"annotations": s.AnnotationSerializer(rows, many=True).data})

    @extend_schema(
        tags=[TAG_REVIEW],
        operation_id="saveAnnotation",
        description=(
            "The caller's annotation of the result under `name` (default: the dataset's first annotation name): "
            "201 when new; the caller's second POST for the same name replaces it (200). "
            "At least a score or a label; 400 naming the field otherwise."
        ),
        request=s.AnnotationWriteSerializer,
        responses={201: s.AnnotationSerializer, 200: s.AnnotationSerializer, **errors(400, 404, 413)},
    )
    def post(self, request: Request, datasetId: UUID, runId: UUID, resultId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        result = get_result(dataset, runId, resultId)
        body = validated(s.AnnotationWriteSerializer, request.data)
        author = cast(User, request.user)  # signed in: anonymous callers were answered 401
        annotation, created = annotations.annotation_save(result=result, dataset=dataset, author=author, **body)
        return Response(
            s.AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class AnnotationDetailView(ApiView):
    @extend_schema(
        tags=[TAG_REVIEW],
        operation_id="deleteAnnotation",
        description="Editors delete their own annotations; the project's owners anyone's (403 otherwise).",
        responses={200: s.SuccessSerializer, **errors(404)},
    )
    def delete(self, request: Request, datasetId: UUID, runId: UUID, resultId: UUID, annotationId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId)
        annotation = get_object_or_404(
            Annotation.objects.select_related("author"),
            pk=annotationId,
            result_id=resultId,
            run_id=runId,
            run__dataset=dataset,
        )
        if annotation.author_id != request.user.pk and getattr(dataset, "user_role", None) != access.OWNER:
            raise access.NotAllowed(
                f"This annotation is {annotation.author.username}'s: editors delete only their own "
                "annotations; project owners may delete anyone's."
            )
        annotations.annotation_delete(annotation=annotation)
        return Response({"success": True})


class CompareView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="compareRuns",
        description=(
            "Compares up to five runs with a baseline, over the items each shares with it; "
            "noise (a change inside the 95 % interval of the paired per-item differences) is "
            f"`unchanged`. `items` is paged with page/perPage (perPage defaults to {MAX_PER_PAGE} here)."
        ),
        parameters=[PageQuerySerializer],
        request=s.CompareRunsSerializer,
        responses={200: s.ComparisonSerializer, **errors(400, 404, 413)},
    )
    def post(self, request: Request, datasetId: UUID) -> Response:
        dataset = self.scoped_dataset(datasetId, needs=access.VIEWER)  # a read, though POSTed
        paginator = PagePagination(default_per_page=MAX_PER_PAGE)
        paginator.read_query(request)
        body = validated(s.CompareRunsSerializer, request.data)
        if len(set(body["run_ids"])) != len(body["run_ids"]) or body["baseline_run_id"] in body["run_ids"]:
            message = "Each run once, and not the baseline."
            raise InvalidInput(f"Invalid runIds: {message}", {"runIds": [message]})
        result = comparison.compare_with_baseline(
            baseline=get_run(dataset, body["baseline_run_id"]),
            runs=[get_run(dataset, run_id) for run_id in body["run_ids"]],
            thresholds={scorer: comparison.Threshold(**t) for scorer, t in body["thresholds"].items()},
            min_delta=body["min_delta"],
            item_filter=body.get("item_filter"),
            offset=paginator.offset,
            limit=paginator.per_page,
        )
        paginator.total = result.matching_items
        context = {"pagination": paginator.pagination(len(result.items))}
        return Response(s.ComparisonSerializer(result, context=context).data)


# ---- projects ------------------------------------------------------------------


class ProjectListView(ListApiView):
    list_key = "projects"
    serializer_class = s.ProjectSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return Project.objects.of_member(self.request.user).order_by("name", "id")

    @extend_schema(
        tags=[TAG_PROJECTS],
        operation_id="listProjects",
        description="The projects the caller is a member of, with the caller's role in each.",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("projects", s.ProjectSerializer), **errors(400)},
    )
    def get(self, request: Request) -> Response:
        return self.list()

    @extend_schema(
        tags=[TAG_PROJECTS],
        operation_id="createProject",
        description="A new project, owned by the caller.",
        request=s.ProjectWriteSerializer,
        responses={201: s.ProjectSerializer, **errors(400, 413)},
    )
    def post(self, request: Request) -> Response:
        project = projects.project_create(user=request.user, **validated(s.ProjectWriteSerializer, request.data))
        return Response(s.ProjectSerializer(access.project_for(request.user, project.pk)).data, status=201)


class ProjectDetailView(ApiView):
    @extend_schema(tags=[TAG_PROJECTS], operation_id="getProject", responses={200: s.ProjectSerializer, **errors(404)})
    def get(self, request: Request, projectId: UUID) -> Response:
        return Response(s.ProjectSerializer(access.project_for(request.user, projectId)).data)

    @extend_schema(
        tags=[TAG_PROJECTS],
        operation_id="renameProject",
        description="Owners only.",
        request=s.ProjectWriteSerializer,
        responses={200: s.ProjectSerializer, **errors(400, 404, 413)},
    )
    def patch(self, request: Request, projectId: UUID) -> Response:
        project = access.project_for(request.user, projectId, needs=access.OWNER)
        projects.project_update(project=project, **validated(s.ProjectWriteSerializer, request.data))
        return Response(s.ProjectSerializer(project).data)

    @extend_schema(
        tags=[TAG_PROJECTS],
        operation_id="deleteProject",
        description="Owners only; deletes the project's datasets, runs and results. A personal project cannot be deleted (409).",
        responses={200: s.SuccessSerializer, **errors(404, 409)},
    )
    def delete(self, request: Request, projectId: UUID) -> Response:
        projects.project_delete(project=access.project_for(request.user, projectId, needs=access.OWNER))
        return Response({"success": True})


def members_answer(project: Project) -> Response:
    members = ProjectMembership.objects.filter(project=project).select_related("user").order_by("user__username")
    return Response({"members": s.MemberSerializer(members, many=True).data})


class ProjectMemberListView(ApiView):
    @extend_schema(
        tags=[TAG_PROJECTS], operation_id="listMembers", responses={200: s.MemberListSerializer, **errors(404)}
    )
    def get(self, request: Request, projectId: UUID) -> Response:
        return members_answer(access.project_for(request.user, projectId))

    @extend_schema(
        tags=[TAG_PROJECTS],
        operation_id="setMember",
        description="Owners only: adds the user with the role, or changes their role. A project keeps at least one owner (409).",
        request=s.MemberSerializer,
        responses={200: s.MemberListSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request: Request, projectId: UUID) -> Response:
        project = access.project_for(request.user, projectId, needs=access.OWNER)
        projects.member_set(project=project, **validated(s.MemberSerializer, request.data))
        return members_answer(project)


class ProjectMemberView(ApiView):
    @extend_schema(
        tags=[TAG_PROJECTS],
        operation_id="removeMember",
        description="Owners only. A project keeps at least one owner (409).",
        responses={200: s.SuccessSerializer, **errors(400, 404, 409)},
    )
    def delete(self, request: Request, projectId: UUID, username: str) -> Response:
        project = access.project_for(request.user, projectId, needs=access.OWNER)
        username = validated(s.MemberPathSerializer, {"username": username})["username"]
        projects.member_remove(project=project, username=username)
        return Response({"success": True})


# ---- catalogue and traces ----------------------------------------------------


class TargetListView(ApiView):
    @extend_schema(
        tags=[TAG_CATALOGUE], operation_id="listTargets", responses={200: s.TargetListSerializer, **errors()}
    )
    def get(self, request: Request) -> Response:
        return Response({"targets": s.TargetSerializer(registry.all_targets(), many=True).data})


class ScorerListView(ApiView):
    @extend_schema(
        tags=[TAG_CATALOGUE], operation_id="listScorers", responses={200: s.ScorerListSerializer, **errors()}
    )
    def get(self, request: Request) -> Response:
        return Response({"scorers": s.ScorerSerializer(registry.all_scorers(), many=True).data})


class TraceDetailView(ApiView):
    @extend_schema(tags=[TAG_RUNS], operation_id="getTrace", responses={200: s.TraceSerializer, **errors(404)})
    def get(self, request: Request, traceId: str) -> Response:
        return Response(s.TraceSerializer(access.trace_for(request.user, traceId)).data)


@extend_schema(exclude=True)
class UnknownPathView(ApiView):
    """Any other path under /api/: a JSON 404 (after authentication), never an HTML page."""

    def dispatch_unknown(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound()

    get = post = put = patch = delete = dispatch_unknown
