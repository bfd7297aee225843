"""The project switcher, project settings and the user's profile (API token)."""

from django.urls import path

from playground.views import projects

urlpatterns = [
    path("projects/switch/", projects.project_switch, name="project-switch"),
    path("projects/new/", projects.project_create, name="project-create"),
    path("project/", projects.project_settings, name="project-settings"),
    path("profile/", projects.profile, name="profile"),
]
