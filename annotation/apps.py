from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate

        from . import receivers  # noqa: F401  connects signal receivers
        from .sqlite_demo import create_triggers, drop_triggers

        pre_migrate.connect(drop_triggers, sender=self, dispatch_uid="emorate-sqlite-drop-triggers")
        post_migrate.connect(create_triggers, sender=self, dispatch_uid="emorate-sqlite-create-triggers")
