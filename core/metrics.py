"""Prometheus metrics: request latency by route, refused submissions, and the apps' own figures.

Web processes count requests in prometheus_client's multiprocess mode when
PROMETHEUS_MULTIPROC_DIR is set (config/gunicorn.conf.py sets it), so /metrics adds up every
gunicorn worker, not only the one that answered. Figures kept in the database (ratings stored,
open leases, ...) are read at scrape time by collectors the apps register, so every process
reports the same truth.

/metrics answers only a request carrying `Authorization: Bearer <EMORATE_METRICS_TOKEN>`; without
the setting, or with another token, it is a 404, as if it did not exist.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .observability import add_response_observer

log = logging.getLogger("emorate.metrics")

# Buckets around the rate page's budget (a submit is a few ms; a dashboard page tens of ms).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram("emorate_http_request_duration_seconds", "Time to answer a request, by route.",
                            ["route", "method"], buckets=_BUCKETS)
RESPONSES = Counter("emorate_http_responses", "Responses by route and status class.",
                    ["route", "method", "status"])
SUBMISSIONS_REFUSED = Counter("emorate_submissions_refused", "Rating submissions answered with a 4xx (refused).",
                              ["status"])

# Views (URL names) whose POST is a rating submission; a 4xx there is a refused submission. Apps add theirs.
SUBMIT_VIEWS: set[str] = set()


def _observe(request: HttpRequest, response: HttpResponse, route: str, seconds: float) -> None:
    method = request.method or "GET"
    REQUEST_SECONDS.labels(route, method).observe(seconds)
    RESPONSES.labels(route, method, f"{response.status_code // 100}xx").inc()
    match = getattr(request, "resolver_match", None)
    if method == "POST" and match is not None and match.view_name in SUBMIT_VIEWS \
            and 400 <= response.status_code < 500:
        SUBMISSIONS_REFUSED.labels(str(response.status_code)).inc()


add_response_observer(_observe)

_collectors: list[Callable[[], Iterable[Metric]]] = []


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Publish figures computed at scrape time (a function yielding prometheus_client metric
    families). Registered once per process, from an app's ready()."""
    if collect not in _collectors:
        _collectors.append(collect)


class _AppFigures(Collector):
    def collect(self) -> Iterable[Metric]:
        for collect in _collectors:
            try:
                yield from collect()
            except Exception:  # a failing figure must not hide the others, nor the request metrics
                log.exception("metrics collector %s failed", getattr(collect, "__name__", collect))


def render() -> bytes:
    """The exposition text: this process's (or every web process's) request metrics, then the
    apps' figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        requests = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests)  # type: ignore[no-untyped-call]
    else:
        requests = REGISTRY
    figures = CollectorRegistry()
    figures.register(_AppFigures())
    return generate_latest(requests) + generate_latest(figures)


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "EMORATE_METRICS_TOKEN", "")
    sent = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        raise Http404("no such page")
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
