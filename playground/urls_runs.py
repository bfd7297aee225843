"""Runs, results, traces and run comparison pages."""

from django.urls import path

from playground.views import compare, curation, review, runs, traces

urlpatterns = [
    path("datasets/<uuid:dataset_id>/runs/start/", runs.run_start, name="run-start"),
    path("datasets/<uuid:dataset_id>/runs/<uuid:run_id>/", runs.run_detail, name="run-detail"),
    path(
        "datasets/<uuid:dataset_id>/runs/<uuid:run_id>/results/",
        runs.run_results_fragment,
        name="run-results-fragment",
    ),
    path(
        "datasets/<uuid:dataset_id>/runs/<uuid:run_id>/results/<uuid:result_id>/",
        runs.result_detail,
        name="result-detail",
    ),
    path("datasets/<uuid:dataset_id>/runs/<uuid:run_id>/review/", review.run_review, name="run-review"),
    path(
        "datasets/<uuid:dataset_id>/runs/<uuid:run_id>/results/<uuid:result_id>/annotate/",
        review.result_annotate,
        name="result-annotate",
    ),
    path(
        "datasets/<uuid:dataset_id>/runs/<uuid:run_id>/add-to-dataset/",
        curation.results_add_to_dataset,
        name="results-add-to-dataset",
    ),
    path("datasets/<uuid:dataset_id>/runs/<uuid:run_id>/cancel/", runs.run_cancel, name="run-cancel"),
    path(
        "datasets/<uuid:dataset_id>/runs/<uuid:run_id>/rerun-failed/",
        runs.run_rerun_failed,
        name="run-rerun-failed",
    ),
    path("datasets/<uuid:dataset_id>/compare/", compare.run_compare, name="run-compare"),
    path("traces/<str:trace_id>/", traces.trace_detail, name="trace-detail"),
]
