"""API views: read the request, call a service or a query, answer (see shared/API.md).

Rules live in `services` (writes) and the models' QuerySets (reads); a
service's InvalidInput/StateConflict becomes a 400/409 in `errors.py`.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets_app import comparison, services
from datasets_app.models import Dataset, DatasetItem, DatasetRun, DatasetRunResult, Trace
from datasets_app.runs import registry

from . import serializers as s
from .pagination import MAX_PER_PAGE, PageQuerySerializer, envelope_serializer, page_from_query, paginate
from .parsers import LimitedJSONParser


class ErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Field errors keyed by camelCase path, e.g. "input/question" or "items/0/input"',
    )


def errors(*codes: int) -> dict:
    return dict.fromkeys((401, 403, *codes), ErrorSerializer)


class ApiView(APIView):
    parser_classes = [LimitedJSONParser]

    def get_authenticate_header(self, request):
        # Anonymous callers get 401 with a Token challenge rather than a bare 403.
        return TokenAuthentication.keyword


def get_dataset(dataset_id) -> Dataset:
    return get_object_or_404(Dataset, pk=dataset_id)


def get_run(dataset: Dataset, run_id) -> DatasetRun:
    return get_object_or_404(DatasetRun, dataset=dataset, pk=run_id)


def get_live_item(dataset: Dataset, item_id) -> DatasetItem:
    return get_object_or_404(DatasetItem.objects.live(), dataset=dataset, pk=item_id)


def validated(serializer_class, data, **kwargs) -> serializers.Serializer:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer


TAG_DATASETS, TAG_ITEMS, TAG_RUNS, TAG_CATALOGUE = "datasets", "items", "runs", "catalogue"


# ---- datasets ------------------------------------------------------------------


class DatasetListView(ApiView):
    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="listDatasets",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("datasets", s.DatasetSerializer), **errors(400)},
    )
    def get(self, request):
        page = page_from_query(request.query_params)
        return Response(paginate(Dataset.objects.all(), page, key="datasets", serializer_class=s.DatasetSerializer))

    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="createDataset",
        request=s.DatasetWriteSerializer,
        responses={201: s.DatasetSerializer, **errors(400, 413)},
    )
    def post(self, request):
        body = validated(s.DatasetWriteSerializer, request.data)
        dataset = services.dataset_create(**body.service_kwargs())
        return Response(s.DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(ApiView):
    @extend_schema(tags=[TAG_DATASETS], operation_id="getDataset", responses={200: s.DatasetSerializer, **errors(404)})
    def get(self, request, datasetId):
        return Response(s.DatasetSerializer(get_dataset(datasetId)).data)

    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="updateDataset",
        request=s.DatasetWriteSerializer(partial=True),
        responses={200: s.DatasetSerializer, **errors(400, 404, 413)},
    )
    def patch(self, request, datasetId):
        dataset = get_dataset(datasetId)
        body = validated(s.DatasetWriteSerializer, request.data, partial=True)
        dataset = services.dataset_update(dataset=dataset, **body.service_kwargs())
        return Response(s.DatasetSerializer(dataset).data)

    @extend_schema(
        tags=[TAG_DATASETS], operation_id="deleteDataset", responses={200: s.SuccessSerializer, **errors(404)}
    )
    def delete(self, request, datasetId):
        services.dataset_delete(dataset=get_dataset(datasetId))
        return Response({"success": True})


class DatasetVersionListView(ApiView):
    @extend_schema(
        tags=[TAG_DATASETS],
        operation_id="listDatasetVersions",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("versions", s.DatasetVersionSerializer), **errors(400, 404)},
    )
    def get(self, request, datasetId):
        dataset = get_dataset(datasetId)
        page = page_from_query(request.query_params)
        versions = dataset.versions.order_by("-version")
        return Response(
            paginate(versions, page, key="versions", serializer_class=s.DatasetVersionSerializer, total=dataset.version)
        )


# ---- items ---------------------------------------------------------------------


class ItemListView(ApiView):
    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="listItems",
        parameters=[PageQuerySerializer, s.ItemListQuerySerializer],
        responses={200: envelope_serializer("items", s.ItemSerializer), **errors(400, 404)},
    )
    def get(self, request, datasetId):
        dataset = get_dataset(datasetId)
        page = page_from_query(request.query_params)
        query = validated(s.ItemListQuerySerializer, request.query_params).validated_data
        search, version = query.get("search", ""), query.get("version")
        if version is None:
            items = dataset.items.live().search(search).order_by("-created_at", "-id")
            total = None if search else dataset.item_count
            return Response(paginate(items, page, key="items", serializer_class=s.ItemSerializer, total=total))
        if version > dataset.version:
            raise ValidationError({"version": [f"The dataset has versions 0 to {dataset.version}."]})
        snapshots = services.items_at_version(dataset=dataset, version=version, search=search)
        return Response(paginate(snapshots, page, key="items", serializer_class=s.ItemSnapshotSerializer))

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="createItem",
        request=s.ItemWriteSerializer,
        responses={201: s.ItemSerializer, **errors(400, 404, 413)},
    )
    def post(self, request, datasetId):
        dataset = get_dataset(datasetId)
        body = validated(s.ItemWriteSerializer, request.data)
        item = services.item_create(dataset=dataset, **body.service_kwargs())
        return Response(s.ItemSerializer(item).data, status=status.HTTP_201_CREATED)


class ItemBulkView(ApiView):
    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="bulkCreateItems",
        description="Adds every item or none, as one dataset version.",
        request=s.BulkItemsWriteSerializer,
        responses={201: s.BulkItemsSerializer, **errors(400, 404, 413)},
    )
    def post(self, request, datasetId):
        dataset = get_dataset(datasetId)
        body = validated(s.BulkItemsWriteSerializer, request.data)
        entries = [dict(entry) for entry in body.validated_data["items"]]
        created = services.items_bulk_create(dataset=dataset, items=entries)
        return Response(
            {"items": s.ItemSerializer(created, many=True).data, "count": len(created)}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="bulkDeleteItems",
        request=s.BulkDeleteSerializer,
        responses={200: s.BulkDeleteResultSerializer, **errors(400, 404, 413)},
    )
    def delete(self, request, datasetId):
        dataset = get_dataset(datasetId)
        body = validated(s.BulkDeleteSerializer, request.data)
        deleted = services.items_bulk_delete(dataset=dataset, item_ids=body.validated_data["itemIds"])
        return Response({"success": True, "deletedCount": deleted})


class ItemDetailView(ApiView):
    @extend_schema(tags=[TAG_ITEMS], operation_id="getItem", responses={200: s.ItemSerializer, **errors(404)})
    def get(self, request, datasetId, itemId):
        return Response(s.ItemSerializer(get_live_item(get_dataset(datasetId), itemId)).data)

    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="updateItem",
        request=s.ItemWriteSerializer(partial=True),
        responses={200: s.ItemSerializer, **errors(400, 404, 409, 413)},
    )
    def patch(self, request, datasetId, itemId):
        item = get_live_item(get_dataset(datasetId), itemId)
        body = validated(s.ItemWriteSerializer, request.data, partial=True)
        item = services.item_update(item=item, **body.service_kwargs())
        return Response(s.ItemSerializer(item).data)

    @extend_schema(tags=[TAG_ITEMS], operation_id="deleteItem", responses={200: s.SuccessSerializer, **errors(404)})
    def delete(self, request, datasetId, itemId):
        services.item_delete(item=get_live_item(get_dataset(datasetId), itemId))
        return Response({"success": True})


class ItemVersionListView(ApiView):
    @extend_schema(
        tags=[TAG_ITEMS],
        operation_id="listItemVersions",
        description="Every snapshot of the item, newest first; a delete leaves a tombstone (`isDeleted`).",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("versions", s.ItemVersionSerializer), **errors(400, 404)},
    )
    def get(self, request, datasetId, itemId):
        item = get_object_or_404(DatasetItem, dataset=get_dataset(datasetId), pk=itemId)
        page = page_from_query(request.query_params)
        versions = item.versions.order_by("-version_number")
        return Response(
            paginate(versions, page, key="versions", serializer_class=s.ItemVersionSerializer, total=item.version)
        )


# ---- runs ----------------------------------------------------------------------


class RunListView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="listRuns",
        description="Newest first.",
        parameters=[PageQuerySerializer, s.RunListQuerySerializer],
        responses={200: envelope_serializer("runs", s.RunSerializer), **errors(400, 404)},
    )
    def get(self, request, datasetId):
        dataset = get_dataset(datasetId)
        page = page_from_query(request.query_params)
        query = validated(s.RunListQuerySerializer, request.query_params).validated_data
        runs = dataset.runs.order_by("-created_at", "-id")
        if "status" in query:
            runs = runs.filter(status=query["status"])
        return Response(paginate(runs, page, key="runs", serializer_class=s.RunSerializer))

    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="startRun",
        description="Records a pending run and queues it for the workers.",
        request=s.RunStartSerializer,
        responses={201: s.RunStartedSerializer, **errors(400, 404, 413)},
    )
    def post(self, request, datasetId):
        dataset = get_dataset(datasetId)
        body = validated(s.RunStartSerializer, request.data)
        run = services.run_start(dataset=dataset, user=request.user, **body.service_kwargs())
        return Response(s.RunStartedSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailView(ApiView):
    @extend_schema(tags=[TAG_RUNS], operation_id="getRun", responses={200: s.RunSerializer, **errors(404)})
    def get(self, request, datasetId, runId):
        return Response(s.RunSerializer(get_run(get_dataset(datasetId), runId)).data)


class RunCancelView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="cancelRun",
        request=None,
        responses={200: s.RunSerializer, **errors(404, 409)},
    )
    def post(self, request, datasetId, runId):
        run = services.run_cancel(run=get_run(get_dataset(datasetId), runId))
        return Response(s.RunSerializer(run).data)


class RunRerunFailedView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="rerunFailedItems",
        description="Starts a new run over the items that failed in this finished run.",
        request=None,
        responses={201: s.RunStartedSerializer, **errors(400, 404, 409)},
    )
    def post(self, request, datasetId, runId):
        run = get_run(get_dataset(datasetId), runId)
        rerun = services.run_rerun_failed(run=run, user=request.user)
        return Response(s.RunStartedSerializer(rerun).data, status=status.HTTP_201_CREATED)


class RunResultListView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="listRunResults",
        description="Ordered by startedAt, then id.",
        parameters=[PageQuerySerializer],
        responses={200: envelope_serializer("results", s.ResultSerializer), **errors(400, 404)},
    )
    def get(self, request, datasetId, runId):
        run = get_run(get_dataset(datasetId), runId)
        page = page_from_query(request.query_params)
        results = DatasetRunResult.objects.filter(run=run).in_display_order()
        return Response(paginate(results, page, key="results", serializer_class=s.ResultSerializer))


class CompareView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS],
        operation_id="compareRuns",
        description=(
            "Compares run B against run A. `items` is paged with the page/perPage query "
            f"parameters (perPage defaults to {MAX_PER_PAGE} here)."
        ),
        parameters=[PageQuerySerializer],
        request=s.CompareRunsSerializer,
        responses={200: s.ComparisonSerializer, **errors(400, 404, 413)},
    )
    def post(self, request, datasetId):
        dataset = get_dataset(datasetId)
        page = page_from_query(request.query_params, default_per_page=MAX_PER_PAGE)
        body = validated(s.CompareRunsSerializer, request.data).validated_data
        result = comparison.compare_runs(
            run_a=get_run(dataset, body["runIdA"]),
            run_b=get_run(dataset, body["runIdB"]),
            thresholds={scorer: dict(t) for scorer, t in body["thresholds"].items()},
            page=page.page,
            per_page=page.per_page,
        )
        return Response(result)


# ---- catalogue and traces ----------------------------------------------------


class TargetListView(ApiView):
    @extend_schema(
        tags=[TAG_CATALOGUE], operation_id="listTargets", responses={200: s.TargetListSerializer, **errors()}
    )
    def get(self, request):
        return Response({"targets": s.TargetSerializer(registry.all_targets(), many=True).data})


class ScorerListView(ApiView):
    @extend_schema(
        tags=[TAG_CATALOGUE], operation_id="listScorers", responses={200: s.ScorerListSerializer, **errors()}
    )
    def get(self, request):
        return Response({"scorers": s.ScorerSerializer(registry.all_scorers(), many=True).data})


class TraceDetailView(ApiView):
    @extend_schema(
        tags=[TAG_RUNS], operation_id="getTrace", responses={200: s.TraceSerializer, **errors(404)}
    )
    def get(self, request, traceId):
        return Response(s.TraceSerializer(get_object_or_404(Trace, pk=traceId)).data)


@extend_schema(exclude=True)
class UnknownPathView(ApiView):
    """Any other path under /api/: a JSON 404 (after authentication), never an HTML page."""

    def dispatch_unknown(self, request, *args, **kwargs):
        raise NotFound()

    get = post = put = patch = delete = dispatch_unknown
