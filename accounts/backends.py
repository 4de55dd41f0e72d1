"""The authentication backend: Django's ModelBackend (email + password, permissions), with the
per-request user lookup as one prepared statement.

`get_user` runs on every request that carries a session. The ORM compiled the same
`SELECT ... WHERE id = %s` anew each time, which cost more than PostgreSQL spent answering it; the
prepared statement (core/prepared.py) returns the same User (every field, converted as the ORM
converts it).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from core import prepared


class EmailBackend(ModelBackend):
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
