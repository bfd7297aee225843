from django.apps import AppConfig


class DatasetsAppConfig(AppConfig):
    name = "datasets_app"
    verbose_name = "Datasets and runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .runs import registry

        registry.load()
