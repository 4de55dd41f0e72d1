"""Write side of accounts: creating users and invitations (the login throttle is accounts/throttle.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from . import emails
from .models import Invitation, RaterProfile, Role, User, canonical_email
from .signals import invitation_accepted


class AccountError(ValueError):
    """A refused account operation; the message names the problem."""


def user_create(*, email: str, role: str, password: str | None = None, display_name: str = "") -> User:
    """Create an account. Raises AccountError for a taken email, an unknown role or a weak password."""
    email = canonical_email(email)
    if role not in Role.values:
        raise AccountError(f"unknown role {role!r} (allowed: {', '.join(Role.values)})")
    if User.objects.filter(email=email).exists():
        raise AccountError(f"a user with email {email} already exists")
    candidate = User(email=email, role=role, display_name=display_name)
    if password is not None:
        try:
            validate_password(password, candidate)
        except Exception as exc:  # ValidationError carries a list of messages
            messages = getattr(exc, "messages", [str(exc)])
            raise AccountError("password refused: " + " ".join(messages)) from exc
    if role == Role.ADMIN:
        return User.objects.create_superuser(email=email, password=password, display_name=display_name)
    return User.objects.create_user(email=email, password=password, role=role, display_name=display_name)


def invitation_create(*, email: str, role: str, projects: list[str], created_by: User | None,
                      send: bool = False) -> Invitation:
    """Create an invitation; with `send`, email its link once the transaction commits (the link is
    also on the inviter's page, for when mail is slow or filtered)."""
    if role not in Role.values:
        raise AccountError(f"unknown role {role!r} (allowed: {', '.join(Role.values)})")
    email = canonical_email(email)
    try:
        validate_email(email)
    except ValidationError as exc:
        raise AccountError(f"{email!r} is not a valid email address") from exc
    if User.objects.filter(email=email).exists():
        raise AccountError(f"a user with email {email} already exists")
    invitation = Invitation.objects.create(email=email, role=role, projects=projects, created_by=created_by)
    if send:
        invitation_email(invitation, template="invitation")
        invitation.emailed_at = timezone.now()
        invitation.save(update_fields=["emailed_at"])
    return invitation


def invitation_link(invitation: Invitation) -> str:
    return emails.site_url(reverse("accounts:invitation-accept", args=[invitation.token]))


def invitation_email(invitation: Invitation, *, template: str, key: str = "") -> None:
    inviter = invitation.created_by
    subject, body = emails.email_render(template, {
        "invitation": invitation, "link": invitation_link(invitation),
        "inviter": (inviter.display_name or inviter.email) if inviter else "the emorate administrators"})
    emails.email_send_later(to=invitation.email, subject=subject, body=body, key=key)


def invitation_reminders_send(*, now: datetime | None = None) -> int:
    """Remind, once, every usable invitation older than EMORATE_INVITATION_REMINDER_DAYS. Idempotent:
    the conditional update claims each invitation, so concurrent runs never remind twice."""
    now = now or timezone.now()
    due = Invitation.objects.filter(accepted_at__isnull=True, reminded_at__isnull=True, expires_at__gt=now,
                                    created_at__lte=now - timedelta(days=settings.EMORATE_INVITATION_REMINDER_DAYS))
    sent = 0
    for invitation in due:
        with transaction.atomic():
            if Invitation.objects.filter(pk=invitation.pk, reminded_at__isnull=True).update(reminded_at=now):
                invitation_email(invitation, template="invitation_reminder", key=f"invitation-reminder:{invitation.pk}")
                sent += 1
    return sent


@transaction.atomic
def invitation_accept(*, token: str, password: str, display_name: str = "") -> User:
    """Create the invited account. Raises AccountError for an unknown, used or expired invitation."""
    invitation = Invitation.objects.select_for_update().filter(token=token).first()
    if invitation is None:
        raise AccountError("this invitation link is not valid")
    if not invitation.is_usable:
        raise AccountError("this invitation has expired or was already used")
    user = user_create(email=invitation.email, role=invitation.role, password=password, display_name=display_name)
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    invitation_accepted.send(sender=Invitation, user=user, invitation=invitation)
    return user


def rater_profile_save(*, user: User, data: dict[str, Any]) -> RaterProfile:
    """Save the user's background profile. Consent is recorded with its time; withdrawing it
    clears every answer (nothing of it is kept or used afterwards)."""
    profile, _ = RaterProfile.objects.get_or_create(user=user)
    consented = bool(data.get("consented"))
    if not consented:
        for name in ("discipline", "native_language", "training_country", "notes"):
            setattr(profile, name, "")
        profile.years_experience = None
        profile.consented, profile.consented_at = False, None
    else:
        for name in ("discipline", "years_experience", "native_language", "training_country", "notes"):
            setattr(profile, name, data.get(name) if name == "years_experience" else (data.get(name) or "").strip())
        if not profile.consented:
            profile.consented_at = timezone.now()
        profile.consented = True
    profile.save()
    return profile
