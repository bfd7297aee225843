"""The current project (the switcher in the header), project settings with
members, and the profile page where a user makes and revokes their API token.

The datasets list shows the current project's datasets; which project is
current is kept in the session, and falls back to the user's personal project
when the session names none (or one the user has left).
"""

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.authtoken.models import Token

from datasets_app import access, projects
from datasets_app.exceptions import PlaygroundError
from datasets_app.models import Project, ProjectMembership, ProjectRole

SESSION_KEY = "current_project_id"


def current_project(request: HttpRequest) -> Project:
    """The project the pages show, with the user's `role` in it; looked up once per
    request (the view and the header's switcher both ask)."""
    cached: Project | None = getattr(request, "_current_project", None)
    if cached is not None:
        return cached
    project_id = request.session.get(SESSION_KEY)
    project = access.projects_of(request.user).filter(pk=project_id).first() if project_id else None
    if project is None:
        personal = projects.personal_project(request.user)
        project = access.projects_of(request.user).get(pk=personal.pk)
    request._current_project = project  # type: ignore[attr-defined]
    return project


def make_current(request: HttpRequest, project: Project) -> None:
    request.session[SESSION_KEY] = str(project.pk)
    request._current_project = None  # type: ignore[attr-defined]


def _back(request: HttpRequest, default: str = "datasets") -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _report(request: HttpRequest, exc: PlaygroundError) -> None:
    messages.error(request, exc.message)


@require_POST
def project_switch(request: HttpRequest) -> HttpResponse:
    make_current(request, access.project_for(request.user, request.POST.get("project", "")))
    return redirect("datasets")


@require_POST
def project_create(request: HttpRequest) -> HttpResponse:
    try:
        project = projects.project_create(user=request.user, name=request.POST.get("name", ""))
    except PlaygroundError as exc:
        _report(request, exc)
        return redirect("project-settings")
    make_current(request, project)
    messages.success(request, f"Created project “{project.name}”; it is now the current project.")
    return redirect("project-settings")


@require_http_methods(["GET", "POST"])
def project_settings(request: HttpRequest) -> HttpResponse:
    """The current project: its name and members (owners change them; the others read)."""
    project = current_project(request)
    if request.method == "POST":
        access.require(request.user, project, ProjectRole.OWNER)
        action = request.POST.get("action", "")
        username = request.POST.get("username", "").strip()
        try:
            if action == "rename":
                projects.project_update(project=project, name=request.POST.get("name", ""))
                messages.success(request, "Renamed the project.")
            elif action == "set-member":
                projects.member_set(project=project, username=username, role=request.POST.get("role", ""))
                messages.success(request, f"{username} is now {request.POST.get('role')} in this project.")
            elif action == "remove-member":
                projects.member_remove(project=project, username=username)
                messages.success(request, f"Removed {username} from this project.")
            elif action == "delete":
                name = project.name
                projects.project_delete(project=project)
                request.session.pop(SESSION_KEY, None)
                messages.success(request, f"Deleted project “{name}” with its datasets.")
                return redirect("datasets")
        except PlaygroundError as exc:
            _report(request, exc)
        return redirect("project-settings")
    members = ProjectMembership.objects.filter(project=project).select_related("user").order_by("user__username")
    context: dict[str, Any] = {
        "project": project,
        "members": members,
        "is_owner": ProjectRole(project.role).allows(ProjectRole.OWNER),  # type: ignore[attr-defined]
        "roles": ProjectRole.choices,
    }
    return render(request, "projects/settings.html", context)


@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """The user's API token: made (shown once, in this answer only) or revoked here."""
    new_key = None
    user = cast(User, request.user)  # pages require a login (LoginRequiredMiddleware)
    if request.method == "POST":
        if request.POST.get("action") == "create-token":
            Token.objects.filter(user=user).delete()
            new_key = Token.objects.create(user=user).key
        elif request.POST.get("action") == "revoke-token":
            Token.objects.filter(user=user).delete()
            messages.success(request, "Revoked your API token; calls with it now answer 401.")
            return redirect("profile")
    token = Token.objects.filter(user=user).first()
    response = render(request, "projects/profile.html", {"token": token, "new_key": new_key})
    if new_key:
        response["Cache-Control"] = "no-store"
    return response
