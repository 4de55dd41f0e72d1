"""The access audit: who changed whose role, activation, flags, groups or permissions.

The acting user is the user of the request being served (set by `ActingUserMiddleware`, read
lazily: recording costs nothing on requests that change no access). Outside a request (commands,
shells) the actor is empty and `via` says so.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models.signals import m2m_changed
from django.http import HttpRequest, HttpResponse

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("emorate_request", default=None)
_actor: contextvars.ContextVar[Any] = contextvars.ContextVar("emorate_actor", default=None)


@contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Name the acting user for changes made outside a request (commands, Celery tasks)."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


class ActingUserMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def acting_user() -> Any:
    """The user named by `acting_as`, else the signed-in user of the current request, else None."""
    if _actor.get() is not None:
        return _actor.get()
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _via() -> str:
    request = _request.get()
    return request.path[:200] if request is not None else ""


def access_changes_record(user: Any, old: dict[str, Any] | None) -> None:
    """Record each audited field of `user` that differs from `old` (None: nothing to compare)."""
    from .models import AccessChange

    if old is None:
        return
    actor = acting_user()
    for name, before in old.items():
        after = getattr(user, name)
        if before != after:
            AccessChange.objects.create(user=user, actor=actor, field=name, old=str(before), new=str(after),
                                        via=_via())


def _m2m_changed(sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: Any,
                 **kwargs: Any) -> None:
    from .models import AccessChange, User

    if action not in ("post_add", "post_remove", "post_clear") or reverse or not isinstance(instance, User):
        return
    field = "groups" if sender is User.groups.through else "user_permissions"
    names = sorted(str(o) for o in model.objects.filter(pk__in=pk_set or []))
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    AccessChange.objects.create(user=instance, actor=acting_user(), field=field,
                                old=verb if action != "post_add" else "", new=", ".join(names) or verb, via=_via())


def connect() -> None:
    from .models import User

    m2m_changed.connect(_m2m_changed, sender=User.groups.through, dispatch_uid="accounts-audit-groups")
    m2m_changed.connect(_m2m_changed, sender=User.user_permissions.through, dispatch_uid="accounts-audit-perms")
