"""The review queue: one result of a run at a time, graded with the keyboard.

(Being built: the views below answer 404 until then.)
"""

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse


def run_review(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    raise Http404


def result_annotate(request: HttpRequest, dataset_id: UUID, run_id: UUID, result_id: UUID) -> HttpResponse:
    raise Http404
