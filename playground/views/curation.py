"""Curation pages: a run's results added to a dataset as items.

The form is `{% add_to_dataset_form run %}` (`playground/templatetags/curation.py`),
on the run, compare, trace and review pages; it posts here and comes back to
the page it was on (`next`).
"""

from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from datasets_app import access, curation, services
from datasets_app.exceptions import InvalidInput
from datasets_app.models import Dataset, DatasetRun
from playground.forms import AddToDatasetForm

from .params import valid_uuids


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """To `next` when it is a page of this site, else to `default`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


def _destination(request: HttpRequest, run: DatasetRun) -> Dataset | None:
    """The dataset chosen (default the run's own), checked for an editor; None when
    a new dataset is to be made, after checking the user may make one in the run's project."""
    if request.POST.get("new_name", "").strip():
        access.require(request.user, run.dataset.project, access.EDITOR)
        return None
    chosen = valid_uuids([request.POST.get("target", "")])
    return access.dataset_for(request.user, chosen[0] if chosen else run.dataset_id, needs=access.EDITOR)


def _error_text(exc: InvalidInput) -> str:
    details = "; ".join(f"{' '.join(v)}" for v in list(exc.errors.values())[:5])
    return f"{exc.message}. {details}" if details and details not in exc.message else exc.message


@require_POST
def results_add_to_dataset(request: HttpRequest, dataset_id: UUID, run_id: UUID) -> HttpResponse:
    """Add the chosen results of the run as items, all or nothing (a new dataset
    too, when named): each item gets the result's input, as expected output the
    run's output or the item's expected output, the split given, and metadata
    naming its source."""
    run = access.run_for(request.user, dataset_id, run_id)  # reading the run is enough…
    destination = _destination(request, run)  # …writing needs an editor
    back_default = run.get_absolute_url()
    result_ids = valid_uuids(request.POST.getlist("result_ids"))
    if not result_ids:
        messages.error(request, "Nothing added: select at least one result first.")
        return _back(request, back_default)
    if destination is not None and destination.project_id != run.dataset.project_id:
        messages.error(
            request,
            f"Nothing added: “{destination.name}” is in another project; "
            "results can be added only to datasets of the run's project.",
        )
        return _back(request, back_default)
    form = AddToDatasetForm(request.POST, run=run, user=request.user)
    if not form.is_valid():
        errors = [f"{form[f].label}: {e}" if f in form.fields else str(e) for f, es in form.errors.items() for e in es]
        messages.error(request, f"Nothing added: {' '.join(errors)}")
        return _back(request, back_default)
    data = form.cleaned_data
    try:
        with transaction.atomic():
            if destination is None:
                destination = services.dataset_create(project=run.dataset.project, name=data["new_name"])
            items = curation.items_from_results(
                dataset=destination,
                run=run,
                result_ids=result_ids,
                expected_from=data["expected_from"],
                split=data["split"] or None,
            )
    except InvalidInput as exc:
        messages.error(request, f"Nothing added: {_error_text(exc)}")
        return _back(request, back_default)
    split = services.clean_split(data["split"])
    count = len(items)
    messages.success(
        request,
        format_html(
            'Added {} item{} to <a href="{}">“{}”</a>{}',
            count,
            "" if count == 1 else "s",
            destination.get_absolute_url() + (f"?{urlencode({'split': split})}" if split else ""),
            destination.name,
            f" (split {split})" if split else "",
        ),
    )
    return _back(request, destination.get_absolute_url())
