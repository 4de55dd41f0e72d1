"""The Celery app. Queues: default, agreement, releases, gpu (routes in settings)."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

from core.observability import bind_celery_task

# Served processes default to production: a deployment that forgets the variable still runs hardened.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("emorate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["annotation.scoring"])  # its tasks live in annotation/scoring/tasks.py


@task_prerun.connect
def _log_context_on(task_id=None, task=None, **_: object) -> None:  # type: ignore[no-untyped-def]
    """Every log line a task writes carries its id and name (core/observability.py)."""
    bind_celery_task(task_id, getattr(task, "name", None))


@task_postrun.connect
def _log_context_off(**_: object) -> None:
    bind_celery_task(None, None)
