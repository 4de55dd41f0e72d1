"""Optional error tracking with Sentry (SENTRY_DSN): Django and Celery integrations, no personal data.

send_default_pii stays off (no cookies, client addresses, user emails or names); `before_send`
also drops what an integration might still attach about the user except the numeric id, and
the request body (rating values, uploaded files).
"""

from __future__ import annotations

from typing import Any


def _scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "env"):
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items()
                                  if k.lower() not in {"cookie", "authorization", "x-csrftoken", "x-forwarded-for"}}
    return event


def init_sentry(dsn: str, *, environment: str, traces_sample_rate: float = 0.0) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(dsn=dsn, environment=environment, send_default_pii=False, traces_sample_rate=traces_sample_rate,
                    integrations=[DjangoIntegration(), CeleryIntegration()], before_send=_scrub)  # type: ignore[arg-type]
