"""`{% add_to_dataset_form run %}`: the "Add to dataset" form for a run's results.

(Being built: renders nothing until then.)
"""

from typing import Any

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def add_to_dataset_form(context: dict[str, Any], run: Any, result: Any = None) -> str:
    return ""
