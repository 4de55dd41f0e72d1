"""Celery beat entry for the lead digest (annotation/services/digest.py); listed in CELERY_IMPORTS."""

from __future__ import annotations

from celery import shared_task

from annotation.services.digest import lead_digests_send


@shared_task(acks_late=True)
def lead_digests_task() -> int:
    return lead_digests_send()
