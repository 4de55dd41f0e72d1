"""API tokens: created, shown once, stored as SHA-256 digests, with an expiry and a scope."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import TOKEN_PREFIX, ApiToken, Role, TokenScope, User, token_digest


class TokenError(ValueError):
    """A refused token operation; the message names the problem."""


def api_token_create(*, user: User, scope: str = TokenScope.READ, days: int | None = None,
                     name: str = "") -> tuple[ApiToken, str]:
    """Create a token for `user`; returns the row and the key, which is never stored or shown again."""
    if scope not in TokenScope.values:
        raise TokenError(f"unknown scope {scope!r} (allowed: {', '.join(TokenScope.values)})")
    max_days = settings.EMORATE_API_TOKEN_MAX_DAYS
    days = settings.EMORATE_API_TOKEN_DAYS if days is None else days
    if not 1 <= days <= max_days:
        raise TokenError(f"days must be between 1 and {max_days}, got {days}")
    if not user.is_active or user.role not in (Role.LEAD, Role.ADMIN):
        raise TokenError("API tokens are for active leads and admins")
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=key[:12], digest=token_digest(key),
                                    scope=scope, expires_at=timezone.now() + timedelta(days=days))
    return token, key


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


@transaction.atomic
def api_token_revoke_all(*, user: User) -> int:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_token_find(key: str) -> ApiToken | None:
    """The live token with this key, or None (unknown, revoked or expired)."""
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
    if token is None or not token.is_live:
        return None
    now = timezone.now()
    # Record use at most once a minute (no write per request).
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
