"""Who may see and change what: the one place the project rules are read.

A user sees only the projects they are a member of. Anything outside them is
"not found" (404, never 403, so existence does not leak); inside, the role
decides: a viewer reads, an editor also writes datasets, items and runs, an
owner also manages members and deletes the project (403 otherwise).

Every page, fragment, export and API view finds its dataset, run or trace
through these functions, so scoping cannot be forgotten in one of them:
`playground/tests/test_access_walk.py` calls every route as a non-member.
"""

from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Dataset, DatasetRun, Project, ProjectMembership, ProjectRole, Trace, membership_role

VIEWER, EDITOR, OWNER = ProjectRole.VIEWER, ProjectRole.EDITOR, ProjectRole.OWNER


class NotAllowed(PermissionDenied):
    """A member whose role is too low for the change (403 with this message)."""


def _require(role: str | None, needed: ProjectRole) -> None:
    if role is None:
        raise Http404("Not found.")
    if not ProjectRole(role).allows(needed):
        article = "a" if needed == VIEWER else "an"
        raise NotAllowed(f"You are a {role} in this project; this needs {article} {needed}.")


def role_in(user: Any, project: Project) -> str | None:
    """The user's role in the project, or None for a non-member."""
    if not getattr(user, "is_authenticated", False):
        return None
    return ProjectMembership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def projects_of(user: Any) -> Any:
    """The user's projects, each with its `role`."""
    return Project.objects.of_member(user)


def project_for(user: Any, project_id: UUID | str, *, needs: ProjectRole = VIEWER) -> Project:
    """The project with the user's `role` in it, if that role allows `needs` (404 / 403 otherwise)."""
    try:
        project_id = UUID(str(project_id))
    except ValueError:
        raise Http404("Not found.") from None
    project = Project.objects.of_member(user).filter(pk=project_id).first()
    _require(getattr(project, "role", None), needs)
    assert project is not None
    return project


def require(user: Any, project: Project, needs: ProjectRole) -> str:
    """Raise unless the user holds at least `needs` in the project; the role held."""
    role = role_in(user, project)
    _require(role, needs)
    assert role is not None
    return role


def dataset_for(user: Any, dataset_id: UUID | str, *, needs: ProjectRole = VIEWER) -> Dataset:
    """The dataset if the user may do what `needs` says with it; 404 / 403 otherwise.

    One query: the dataset with the user's role in its project.
    """
    if not getattr(user, "is_authenticated", False):
        raise Http404("Not found.")
    dataset = (
        Dataset.objects.filter(pk=dataset_id)
        .annotate(user_role=membership_role(user, "project"))
        .select_related("project")
        .first()
    )
    _require(getattr(dataset, "user_role", None), needs)
    assert dataset is not None
    return dataset


def run_for(user: Any, dataset_id: UUID | str, run_id: UUID | str, *, needs: ProjectRole = VIEWER) -> DatasetRun:
    """The run under that dataset, with `run.dataset` loaded, on the same terms."""
    run = (
        DatasetRun.objects.filter(pk=run_id, dataset_id=dataset_id)
        .annotate(user_role=membership_role(user, "dataset__project"))
        .select_related("dataset__project")
        .first()
        if getattr(user, "is_authenticated", False)
        else None
    )
    _require(getattr(run, "user_role", None), needs)
    assert run is not None
    return run


def trace_for(user: Any, trace_id: str) -> Trace:
    """A stored trace of a run in one of the user's projects (404 otherwise, also for
    a trace that belongs to no run)."""
    if not getattr(user, "is_authenticated", False):
        raise Http404("Not found.")
    trace = Trace.objects.filter(pk=trace_id, run__dataset__project__memberships__user=user).first()
    if trace is None:
        raise Http404("Not found.")
    return trace
