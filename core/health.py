"""Liveness and readiness.

/healthz: the process answers (touches nothing: no database, no cache, no session).
/readyz: every dependency a request may need answers: PostgreSQL (reachable, every migration
applied), Redis (when configured), media storage (a probe file written and deleted through the
storage API). 200 {"status": "ready", "checks": {...}} or 503 {"status": "unavailable",
"failing": [...], "checks": {...}}, each failing check with its reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse

log = logging.getLogger("emorate.health")

_migrated = False  # once every migration is applied it stays so for this process's code


def _select_one(connection) -> None:  # type: ignore[no-untyped-def]
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_database() -> None:
    global _migrated
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        try:
            _select_one(connection)
        except Exception:
            # A connection kept from before a database restart is stale, not an outage: retry afresh.
            connection.close()
            _select_one(connection)
        if not _migrated:
            from django.db.migrations.executor import MigrationExecutor

            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if pending:
                raise RuntimeError(f"{len(pending)} migration(s) not applied (run `manage.py migrate`)")
            _migrated = True
    except Exception:
        connection.close()  # a broken connection must not be reused by the next request
        raise


def check_redis() -> None:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return  # no Redis configured (the demo runs background work in-process)
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        client.ping()
    finally:
        client.close()


def check_storage() -> None:
    """A probe file written, found and deleted through the storage API (the bucket, on S3)."""
    name = default_storage.save(f"health/probe-{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    try:
        if not default_storage.exists(name):
            raise RuntimeError("a file written to media storage cannot be found again")
    finally:
        default_storage.delete(name)


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "redis": check_redis,
                                          "storage": check_storage}


def readiness() -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            results[name] = f"failing: {reason}"
            log.warning("readiness check %s failed: %s", name, reason)
    return all(value == "ok" for value in results.values()), results


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    ready, checks = readiness()
    if ready:
        return JsonResponse({"status": "ready", "checks": checks})
    failing = [name for name, value in checks.items() if value != "ok"]
    response = JsonResponse({"status": "unavailable", "failing": failing, "checks": checks}, status=503)
    response["Retry-After"] = "10"
    return response


class ProbeMiddleware:
    """Answers /healthz, /readyz and /metrics before anything else looks at the request.

    Container health checks and Prometheus call the web process directly on the internal network,
    over plain HTTP and with whatever Host header they use: behind the host validation and the
    HTTPS redirect every probe would be a 400 or a 301. The same views are in the URLconf (names
    `healthz`, `readyz`, `metrics`) for reverse() and the permission matrix.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return healthz(request)
        if request.path == "/readyz":
            return readyz(request)
        if request.path == "/metrics":
            from .metrics import metrics_view

            try:
                return metrics_view(request)
            except Http404:
                return HttpResponseNotFound(b"Not Found", content_type="text/plain")
        return self.get_response(request)
