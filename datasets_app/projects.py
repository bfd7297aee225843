"""Every write to projects and their members (who may do what is `access.py`)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from .exceptions import InvalidInput, StateConflict
from .models import Project, ProjectMembership, ProjectRole


def _clean_name(name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("name is required", {"name": ["This field may not be blank."]})
    return name.strip()[:255]


def personal_project(user: Any) -> Project:
    """The user's own project, made on first use (users get one on sign-up)."""
    project = Project.objects.filter(personal_for=user).first()
    if project is not None:
        return project
    try:
        with transaction.atomic():
            project = Project.objects.create(name=f"{user.get_username()}'s project", personal_for=user)
            ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.OWNER)
    except IntegrityError:  # made by a concurrent request
        return Project.objects.get(personal_for=user)
    return project


def give_new_user_a_project(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """post_save of the user model: every new user (sign-up, admin, createsuperuser) gets a project."""
    if created and not raw:
        personal_project(instance)


def project_create(*, user: Any, name: str) -> Project:
    """A new project owned by `user`."""
    with transaction.atomic():
        project = Project.objects.create(name=_clean_name(name))
        ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.OWNER)
    return project


def project_update(*, project: Project, name: str) -> Project:
    project.name = _clean_name(name)
    project.save(update_fields=["name"])
    return project


def project_delete(*, project: Project) -> None:
    """Delete the project with its datasets, runs and results (not a personal project)."""
    if project.personal_for_id is not None:
        raise StateConflict("A personal project cannot be deleted")
    project.delete()


def _user_named(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput(f"No user named {username!r}", {"username": [f"No user named {username!r}."]})
    return user


def _check_role(role: str) -> ProjectRole:
    if role not in ProjectRole.values:
        raise InvalidInput(f"Unknown role {role!r}", {"role": [f"Must be one of {', '.join(ProjectRole.values)}."]})
    return ProjectRole(role)


def member_set(*, project: Project, username: str, role: str) -> ProjectMembership:
    """Add the user to the project with `role`, or change their role."""
    new_role = _check_role(role)
    user = _user_named(username)
    with transaction.atomic():
        memberships = ProjectMembership.objects.select_for_update().filter(project=project)
        membership = memberships.filter(user=user).first()
        if membership is None:
            return ProjectMembership.objects.create(project=project, user=user, role=new_role)
        if membership.role == ProjectRole.OWNER and new_role != ProjectRole.OWNER:
            _keep_an_owner(memberships, leaving=membership)
        membership.role = new_role
        membership.save(update_fields=["role"])
    return membership


def member_remove(*, project: Project, username: str) -> None:
    user = _user_named(username)
    with transaction.atomic():
        memberships = ProjectMembership.objects.select_for_update().filter(project=project)
        membership = memberships.filter(user=user).first()
        if membership is None:
            raise InvalidInput(
                f"{username} is not a member of this project", {"username": ["Not a member of this project."]}
            )
        if membership.role == ProjectRole.OWNER:
            _keep_an_owner(memberships, leaving=membership)
        membership.delete()


def _keep_an_owner(memberships: Any, *, leaving: ProjectMembership) -> None:
    if not memberships.filter(role=ProjectRole.OWNER).exclude(pk=leaving.pk).exists():
        raise StateConflict("A project needs an owner: make someone else owner first")
