"""Thin Celery wrappers for the accounts emails."""

from __future__ import annotations

from celery import shared_task

from . import emails, services


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=30, max_retries=5)
def email_send_task(*, to: str, subject: str, body: str, key: str = "") -> bool:
    return emails.email_send_now(to=to, subject=subject, body=body, key=key)


@shared_task(acks_late=True)
def invitation_reminders_task() -> int:
    return services.invitation_reminders_send()
