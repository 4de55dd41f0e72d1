"""The platform's own figures on /metrics (core.metrics), read from the database and the broker at
scrape time, so every web process reports the same values.

emorate_ratings_stored_total{project}            expert ratings stored (never deleted, so a counter)
emorate_open_leases{project}                     assignments open and not expired
emorate_images_below_target{project}             images that still need ratings (the queue's open set)
emorate_celery_queue_depth{queue}                messages waiting in each Celery queue
emorate_agreement_snapshot_age_seconds{project}  age of the latest completed agreement snapshot
emorate_release_builds{status}                   releases building and failed
emorate_submissions_refused_total{status}        (core.metrics) rating submissions answered 4xx
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, Max, Q
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from .models import AgreementSnapshot, Assignment, Image, Project, Rating, Release
from .models.agreement import SnapshotStatus
from .models.assignment import AssignmentStatus
from .models.release import ReleaseStatus

# kombu's Redis transport keeps a queue's messages of priority p > 0 under "<queue>\x06\x16<p>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def celery_queues() -> list[str]:
    routes = getattr(settings, "CELERY_TASK_ROUTES", {})
    return sorted({getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "default")}
                  | {route["queue"] for route in routes.values()})


def _queue_depths() -> dict[str, int]:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return {}
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        pipe = client.pipeline(transaction=False)
        queues = celery_queues()
        for queue in queues:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
        lengths = pipe.execute()
    finally:
        client.close()
    per = len(_PRIORITY_SUFFIXES)
    return {queue: sum(lengths[i * per:(i + 1) * per]) for i, queue in enumerate(queues)}


def collect_platform_figures() -> Iterable[Metric]:
    slugs = dict(Project.objects.values_list("pk", "slug"))
    now = timezone.now()

    stored = CounterMetricFamily("emorate_ratings_stored", "Expert ratings stored.", labels=["project"])
    for project_id, n in Rating.objects.values_list("project_id").annotate(n=Count("pk")).order_by():
        stored.add_metric([slugs.get(project_id, str(project_id))], n)
    yield stored

    leases = GaugeMetricFamily("emorate_open_leases", "Assignments open and not expired.", labels=["project"])
    open_now = Assignment.objects.filter(status=AssignmentStatus.OPEN, expires_at__gt=now)
    for project_id, n in open_now.values_list("project_id").annotate(n=Count("pk")).order_by():
        leases.add_metric([slugs.get(project_id, str(project_id))], n)
    yield leases

    below = GaugeMetricFamily("emorate_images_below_target", "Images that still need ratings.", labels=["project"])
    counts = dict(Image.objects.filter(queue_full=False).values_list("project_id").annotate(n=Count("pk")).order_by())
    for project_id, slug in slugs.items():
        below.add_metric([slug], counts.get(project_id, 0))
    yield below

    age = GaugeMetricFamily("emorate_agreement_snapshot_age_seconds",
                            "Seconds since the latest completed agreement snapshot.", labels=["project"])
    latest = AgreementSnapshot.objects.filter(status=SnapshotStatus.DONE).values_list("project_id") \
        .annotate(at=Max("created_at")).order_by()
    for project_id, at in latest:
        age.add_metric([slugs.get(project_id, str(project_id))], (now - at).total_seconds())
    yield age

    builds = GaugeMetricFamily("emorate_release_builds", "Release builds by state.", labels=["status"])
    by_status = Release.objects.aggregate(
        building=Count("pk", filter=Q(status=ReleaseStatus.BUILDING)),
        failed=Count("pk", filter=Q(status=ReleaseStatus.FAILED)))
    for status, n in by_status.items():
        builds.add_metric([status], n)
    yield builds

    depth = GaugeMetricFamily("emorate_celery_queue_depth", "Messages waiting in each Celery queue.",
                              labels=["queue"])
    for queue, n in _queue_depths().items():
        depth.add_metric([queue], n)
    yield depth
