"""Template helpers of the run pages, for templates whose view is not a run view.

{% load run_pages %}
{% runs_tab dataset as tab %}    → the Runs tab's list (?tag=, ?runs_page=) and trends
                                   (playground.views.runs.runs_tab_context)
{{ run|run_name }}               → the run's name, else "target · date time"

The dataset passed in is the one the page's view got through `access`; these
helpers only read that dataset's runs.
"""

from typing import Any

from django import template

from datasets_app.models import Dataset, DatasetRun
from playground.views import runs

register = template.Library()


@register.simple_tag(takes_context=True)
def runs_tab(context: template.Context, dataset: Dataset) -> dict[str, Any]:
    return runs.runs_tab_context(context["request"], dataset)


@register.filter
def run_name(run: DatasetRun) -> str:
    return runs.run_name(run)
