from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate

        from core.metrics import SUBMIT_VIEWS, register_collector

        from . import receivers  # noqa: F401  connects signal receivers
        from .db.sqlite import create_triggers, drop_triggers
        from .metrics import collect_platform_figures

        register_collector(collect_platform_figures)
        SUBMIT_VIEWS.add("annotation:rate-submit")

        pre_migrate.connect(drop_triggers, sender=self, dispatch_uid="emorate-sqlite-drop-triggers")
        post_migrate.connect(create_triggers, sender=self, dispatch_uid="emorate-sqlite-create-triggers")
