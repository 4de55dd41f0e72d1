"""The authentication backend: Django's ModelBackend (email + password, permissions), with the
per-request user lookup as one prepared statement.

`get_user` runs on every request that carries a session. The ORM compiled the same
`SELECT ... WHERE id = %s` anew each time, which cost more than PostgreSQL spent answering it; the
prepared statement (core/prepared.py) returns the same User (every field, converted as the ORM
converts it).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from core import prepared


class EmailBackend(ModelBackend):
    def authenticate(self, request: Any, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        """Password check behind the one throttle (accounts/throttle.py), whoever asks: the login page,
        the Django admin, a shell. A throttled attempt raises PermissionDenied (authenticate() then
        returns None without trying further) and leaves the reason on the request for the form."""
        from . import throttle
        from .models import canonical_email

        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        if not settings.EMORATE_PASSWORD_LOGIN and not self._break_glass(username):
            return None
        found = get_user_model().objects.filter(email=canonical_email(username)).values_list("pk", flat=True).first()
        account = f"user:{found}" if found is not None else username
        try:
            attempt = throttle.attempt(way="login", account=account, client=throttle.client_address(request))
        except throttle.Throttled as exc:
            if request is not None:
                request.emorate_throttled = exc
            raise PermissionDenied(str(exc)) from exc
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not settings.EMORATE_PASSWORD_LOGIN and user.role != "admin":
            user = None  # break glass is for admins only
        if user is not None:
            attempt.succeeded()
        return user

    @staticmethod
    def _break_glass(username: str) -> bool:
        from .models import canonical_email

        allowed = {canonical_email(e) for e in settings.EMORATE_BREAK_GLASS_ADMINS}
        return canonical_email(username) in allowed

    def get_user(self, user_id: Any) -> Any:
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        model = get_user_model()
        sql = f"SELECT {prepared.select_list(model, 'u')} FROM {model._meta.db_table} u WHERE u.id = %s"
        found = prepared.fetch_models(model, sql, [pk])
        user = found[0] if found else None
        return user if user is not None and self.user_can_authenticate(user) else None
