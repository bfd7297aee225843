"""What every page's header needs: the user's projects and the current one (the switcher)."""

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from datasets_app import access
from playground.views.projects import current_project


def projects(request: HttpRequest) -> dict[str, Any]:
    """Lazy: only pages that draw the header query them (never the polled fragments)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "current_project": SimpleLazyObject(lambda: current_project(request)),
        "nav_projects": SimpleLazyObject(lambda: list(access.projects_of(request.user).order_by("name", "id"))),
    }
