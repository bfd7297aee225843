"""Browser pages. Datasets/items/imports and runs/results/traces/compare live
in separate URL modules so each area reads on its own."""

from django.urls import include, path

urlpatterns = [
    path("", include("playground.urls_datasets")),
    path("", include("playground.urls_runs")),
    path("", include("playground.urls_projects")),
]
