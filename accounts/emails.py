"""Email: rendered from templates/accounts/email/, sent by a Celery task after the transaction
commits (so a page answers in the same time whether or not an email goes out), at most once per
key (EmailSent) for automatic emails such as reminders and digests."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string

from .models import EmailSent


def site_url(path: str) -> str:
    return f"{settings.EMORATE_SITE_URL}{path}"


def email_render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) from templates/accounts/email/<template>_subject.txt and <template>.txt."""
    context = {"site_url": settings.EMORATE_SITE_URL, **context}
    subject = " ".join(render_to_string(f"accounts/email/{template}_subject.txt", context).split())
    return subject, render_to_string(f"accounts/email/{template}.txt", context)


def email_send_now(*, to: str, subject: str, body: str, key: str = "") -> bool:
    """Send one email. With a key, only the first call for that key sends (returns False after)."""
    if key:
        try:
            with transaction.atomic():
                EmailSent.objects.create(key=key, to=to)
                send_mail(subject, body, None, [to])
        except IntegrityError:
            return False
        return True
    send_mail(subject, body, None, [to])
    return True


def email_send_later(*, to: str, subject: str, body: str, key: str = "") -> None:
    """Queue the email once the current transaction commits."""
    from .tasks import email_send_task

    transaction.on_commit(lambda: email_send_task.delay(to=to, subject=subject, body=body, key=key))
