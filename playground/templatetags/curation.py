"""`{% add_to_dataset_form run %}`: the "Add to dataset" form for a run's results.

On the run page it adds the results checked in the results table (checkboxes
`name="result_ids" form="add-to-dataset"`); with `result=` (the review queue)
it adds that one result. Renders nothing for someone who cannot edit the run's
project. Posts to `results-add-to-dataset` (`playground/views/curation.py`).
"""

from typing import Any

from django import template
from django.template.loader import render_to_string

from datasets_app import access
from datasets_app.models import DatasetItem, ProjectRole
from playground.forms import AddToDatasetForm

register = template.Library()

MAX_SPLIT_NAMES = 100


@register.simple_tag(takes_context=True)
def add_to_dataset_form(
    context: Any,
    run: Any,
    result: Any = None,
    next: str | None = None,
    form_id: str = "add-to-dataset",
    title: str = "",
) -> str:
    """The form for `run`'s checked results (checkboxes with `form="<form_id>"`) or
    one `result`; `next` is where to go back to (default: this page). A page with
    several runs (compare) renders one form per run, each with its own `form_id`
    and a `title` naming the run."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None:
        return ""
    project = run.dataset.project
    role = getattr(run, "user_role", None) or access.role_in(user, project)
    if role is None or not ProjectRole(role).allows(ProjectRole.EDITOR):
        return ""
    form = AddToDatasetForm(run=run, user=user, auto_id=f"{form_id}-%s")
    form.fields["split"].widget.attrs["list"] = f"{form_id}-splits"
    targets = form.fields["target"].queryset  # type: ignore[attr-defined]
    splits = (
        DatasetItem.objects.filter(dataset__in=targets, is_deleted=False)
        .exclude(split=None)
        .order_by("split")
        .values_list("split", flat=True)
        .distinct()[:MAX_SPLIT_NAMES]
    )
    return render_to_string(
        "curation/add_to_dataset_form.html",
        {
            "run": run,
            "result": result,
            "form": form,
            "splits": list(splits),
            "next": next or _page_path(request),
            "form_id": form_id,
            "title": title,
        },
        request=request,
    )


def _page_path(request: Any) -> str:
    """Where the form should send the user back: the page's address, also when the
    form came in an htmx fragment (whose own URL is not a page)."""
    htmx = getattr(request, "htmx", None)
    if htmx and htmx.current_url_abs_path:
        return str(htmx.current_url_abs_path)
    return str(request.get_full_path())
