from django.contrib import admin
from django.urls import include, path

from playground import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("datasets_app.api.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("playground.pages_urls")),
]
