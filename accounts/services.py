"""Write side of accounts: creating users, throttled login checks, invitations."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from .models import Invitation, Role, User
from .signals import invitation_accepted


class AccountError(ValueError):
    """A refused account operation; the message names the problem."""


def user_create(*, email: str, role: str, password: str | None = None, display_name: str = "") -> User:
    """Create an account. Raises AccountError for a taken email, an unknown role or a weak password."""
    email = email.strip().lower()
    if role not in Role.values:
        raise AccountError(f"unknown role {role!r} (allowed: {', '.join(Role.values)})")
    if User.objects.filter(email__iexact=email).exists():
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


def _throttle_key(email: str, client: str) -> str:
    digest = hashlib.sha256(f"{email.strip().lower()}|{client}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


def login_is_locked(email: str, client: str) -> bool:
    return int(cache.get(_throttle_key(email, client), 0)) >= settings.LOGIN_MAX_FAILURES


def login_failed(email: str, client: str) -> int:
    """Count one failed login; returns the count inside the current lockout window."""
    key = _throttle_key(email, client)
    if cache.add(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        return 1


def login_succeeded(email: str, client: str) -> None:
    cache.delete(_throttle_key(email, client))


def invitation_create(*, email: str, role: str, projects: list[str], created_by: User | None) -> Invitation:
    if role not in Role.values:
        raise AccountError(f"unknown role {role!r} (allowed: {', '.join(Role.values)})")
    if User.objects.filter(email__iexact=email).exists():
        raise AccountError(f"a user with email {email} already exists")
    return Invitation.objects.create(email=email.strip().lower(), role=role, projects=projects, created_by=created_by)


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
