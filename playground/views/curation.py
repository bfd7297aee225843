"""Curation pages: results added to a dataset as items.

(Being built: the view below answers 404 until then.)
"""

from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse


def results_add_to_dataset(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    raise Http404
