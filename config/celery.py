"""The Celery app. Queues: default, agreement, releases, gpu (routes in settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("emorate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["annotation.scoring"])  # its tasks live in annotation/scoring/tasks.py
