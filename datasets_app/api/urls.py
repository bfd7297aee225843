"""URLs under /api/ (no trailing slashes, camelCase path parameters as in docs/api.md).

Every view is exempt from LoginRequiredMiddleware so that DRF itself answers
an anonymous caller with a JSON 401 instead of a redirect to the login page.
Only the Swagger UI page, meant for a browser, sends anonymous visitors to
the login page.
"""

from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import URLPattern, path, re_path
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.views import APIView

from . import views


def api_path(route: str, view_class: type[APIView], name: str) -> URLPattern:
    return path(route, login_not_required(view_class.as_view()), name=name)


urlpatterns = [
    api_path("projects", views.ProjectListView, "api-projects"),
    api_path("projects/<uuid:projectId>", views.ProjectDetailView, "api-project"),
    api_path("projects/<uuid:projectId>/members", views.ProjectMemberListView, "api-project-members"),
    api_path("projects/<uuid:projectId>/members/<str:username>", views.ProjectMemberView, "api-project-member"),
    api_path("datasets", views.DatasetListView, "api-datasets"),
    api_path("datasets/<uuid:datasetId>", views.DatasetDetailView, "api-dataset"),
    api_path("datasets/<uuid:datasetId>/versions", views.DatasetVersionListView, "api-dataset-versions"),
    api_path("datasets/<uuid:datasetId>/items", views.ItemListView, "api-items"),
    api_path("datasets/<uuid:datasetId>/items/bulk", views.ItemBulkView, "api-items-bulk"),
    api_path("datasets/<uuid:datasetId>/items/split", views.ItemSplitView, "api-items-split"),
    api_path("datasets/<uuid:datasetId>/items/from-results", views.ItemsFromResultsView, "api-items-from-results"),
    api_path("datasets/<uuid:datasetId>/items/<uuid:itemId>", views.ItemDetailView, "api-item"),
    api_path("datasets/<uuid:datasetId>/items/<uuid:itemId>/versions", views.ItemVersionListView, "api-item-versions"),
    api_path("datasets/<uuid:datasetId>/runs", views.RunListView, "api-runs"),
    api_path("datasets/<uuid:datasetId>/runs/<uuid:runId>", views.RunDetailView, "api-run"),
    api_path("datasets/<uuid:datasetId>/runs/<uuid:runId>/cancel", views.RunCancelView, "api-run-cancel"),
    api_path(
        "datasets/<uuid:datasetId>/runs/<uuid:runId>/rerun-failed", views.RunRerunFailedView, "api-run-rerun-failed"
    ),
    api_path("datasets/<uuid:datasetId>/runs/<uuid:runId>/results", views.RunResultListView, "api-run-results"),
    api_path(
        "datasets/<uuid:datasetId>/runs/<uuid:runId>/results/<uuid:resultId>/annotations",
        views.AnnotationListView,
        "api-result-annotations",
    ),
    api_path(
        "datasets/<uuid:datasetId>/runs/<uuid:runId>/results/<uuid:resultId>/annotations/<uuid:annotationId>",
        views.AnnotationDetailView,
        "api-result-annotation",
    ),
    api_path("datasets/<uuid:datasetId>/compare", views.CompareView, "api-compare"),
    api_path("targets", views.TargetListView, "api-targets"),
    api_path("scorers", views.ScorerListView, "api-scorers"),
    re_path(
        r"^traces/(?P<traceId>[0-9a-f]{32})$", login_not_required(views.TraceDetailView.as_view()), name="api-trace"
    ),
    api_path("schema/", views.SchemaView, "api-schema"),
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    re_path(r"^.*$", login_not_required(views.UnknownPathView.as_view()), name="api-unknown"),
]
