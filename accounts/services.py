"""Write side of accounts: creating users and invitations (the login throttle is accounts/throttle.py)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from .models import Invitation, Role, User, canonical_email
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


def invitation_create(*, email: str, role: str, projects: list[str], created_by: User | None) -> Invitation:
    if role not in Role.values:
        raise AccountError(f"unknown role {role!r} (allowed: {', '.join(Role.values)})")
    email = canonical_email(email)
    if User.objects.filter(email=email).exists():
        raise AccountError(f"a user with email {email} already exists")
    return Invitation.objects.create(email=email, role=role, projects=projects, created_by=created_by)


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
