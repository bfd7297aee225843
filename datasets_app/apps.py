from django.apps import AppConfig


class DatasetsAppConfig(AppConfig):
    name = "datasets_app"
    verbose_name = "Datasets and runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from .projects import give_new_user_a_project
        from .runs import registry

        registry.load()
        post_save.connect(give_new_user_a_project, sender=get_user_model(), dispatch_uid="personal-project")
