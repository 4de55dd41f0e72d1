"""Request ids, one log line per request, and the context every log line carries.

The context (request id, route, user id; task id and name in a Celery worker) lives in
contextvars, so any logger anywhere in a request or task gets it through `ContextFilter`, and the
JSON formatter (`EMORATE_LOG_FORMAT=json`, production's default) writes it as fields. User ids
only: never an email or a name.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
route_var: ContextVar[str | None] = ContextVar("route", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)
task_name_var: ContextVar[str | None] = ContextVar("task_name", default=None)

access_log = logging.getLogger("emorate.request")

# An id from the proxy (Caddy sets none by default; a load balancer may) is kept when it is
# plain; anything else is replaced, so a client cannot inject text into the logs.
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class ContextFilter(logging.Filter):
    """Adds the request/task context to every record (None where there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        if not hasattr(record, "route"):
            record.route = route_var.get()
        if not hasattr(record, "user_id"):
            record.user_id = user_id_var.get()
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        return True


class EmorateJsonFormatter(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message and the context
    fields; fields that are None are left out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in log_record.items() if value is not None}


class TextFormatter(logging.Formatter):
    """The human-readable format (the demo and development): the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{key}={getattr(record, key)}" for key in ("request_id", "task_name", "task_id")
                 if getattr(record, key, None)]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served the request (e.g. `projects/<slug:slug>/rate/`), never the path
    itself: a bounded set of values for logs and metric labels. Unresolved requests are `unmatched`."""
    match = getattr(request, "resolver_match", None)
    if match is None:  # answered before URL resolution (static files) or by no route at all
        return "static" if request.path.startswith("/static/") else "unmatched"
    return "/" + (match.route or match.view_name or "unknown")


def _user_id(request: HttpRequest) -> int | None:
    # Only a user the request already loaded: the log line must not cost a session lookup (and
    # /healthz must touch no dependency).
    user = request.__dict__.get("_cached_user")
    return getattr(user, "pk", None) if user is not None and user.is_authenticated else None


ResponseObserver = Callable[[HttpRequest, HttpResponse, str, float], None]
_observers: list[ResponseObserver] = []


def add_response_observer(observer: ResponseObserver) -> None:
    """Call `observer(request, response, route, seconds)` after every response (the metrics)."""
    if observer not in _observers:
        _observers.append(observer)


class RequestObservabilityMiddleware:
    """First in the chain: gives each request an id (echoed as X-Request-ID), times it, and writes
    one access line (route, method, status, duration, user id) after the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            route = route_of(request)
            response["X-Request-ID"] = request_id
            for observer in _observers:
                observer(request, response, route, seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %s", request.method, route, response.status_code, extra={
                    "route": route, "method": request.method, "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 2), "user_id": _user_id(request)})
            return response
        finally:
            request_id_var.reset(token)


def bind_celery_task(task_id: str | None, task_name: str | None) -> None:
    """Called by the worker's task_prerun/postrun signals (config/celery.py)."""
    task_id_var.set(task_id)
    task_name_var.set(task_name)
