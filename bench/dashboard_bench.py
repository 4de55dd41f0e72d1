"""Server time of every lead dashboard page for a project of 100,000 images and 300,000 ratings.

Ours: each page through the Django test client (permission check, selectors, SVG charts, template),
reading the stored agreement snapshot. Goal: every page under 100 ms.
Peer, same data, same run: the agreement page computing its figures on request instead of reading
the snapshot (agreement_compute with the same bootstrap count), which is what the dashboards avoid.
Run: make bench-dashboard_bench   [N_IMAGES=100000 PER_IMAGE=3 N_BOOT=200 REPEAT=5]
"""

from __future__ import annotations

import os
import statistics
import time

from _setup import django_on_postgres, seed_ratings

GOAL_MS = 100.0


def main() -> None:
    django_on_postgres()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from accounts.models import User
    from annotation.models import Image, Project
    from annotation.services.agreement_snapshot import agreement_compute, agreement_snapshot_create

    settings.ALLOWED_HOSTS = ["*"]
    n_images = int(os.environ.get("N_IMAGES", "100000"))
    per_image = int(os.environ.get("PER_IMAGE", "3"))
    n_boot = int(os.environ.get("N_BOOT", "200"))
    repeat = int(os.environ.get("REPEAT", "5"))
    project = Project.objects.get(pk=seed_ratings(n_images, per_image))
    Project.objects.filter(pk=project.pk).update(target_ratings=per_image)
    t0 = time.perf_counter()
    snapshot = agreement_snapshot_create(project, n_boot=n_boot)
    t_snapshot = time.perf_counter() - t0
    with connection.cursor() as cur:  # what autovacuum does in production after a bulk load
        cur.execute("VACUUM ANALYZE annotation_image")
        cur.execute("VACUUM ANALYZE annotation_rating")
    first = Image.objects.filter(project=project).order_by("-priority", "id").first()
    assert first is not None
    admin = User.objects.create_superuser(email="bench-admin@example.org", password="x")
    client = Client()
    client.force_login(admin)
    slug = project.slug
    pages = {
        "overview": reverse("annotation:dashboard", args=[slug]),
        "agreement": reverse("annotation:dashboard-agreement", args=[slug]),
        "agreement csv": reverse("annotation:dashboard-agreement", args=[slug]) + "?format=csv&table=alpha",
        "raters": reverse("annotation:dashboard-raters", args=[slug]),
        "demographics": reverse("annotation:dashboard-demographics", args=[slug]),
        "disputed": reverse("annotation:dashboard-disputed", args=[slug]),
        "disputed p.100": reverse("annotation:dashboard-disputed", args=[slug]) + "?page=100",
        "disputed image": reverse("annotation:dashboard-disputed-detail", args=[slug, first.pk]),
        "jobs fragment": reverse("annotation:dashboard-jobs", args=[slug]),
        "releases": reverse("annotation:dashboard-releases", args=[slug]),
    }
    print(f"{n_images:,} images x {per_image} ratings; snapshot (n_boot={n_boot}) stored in {t_snapshot:.1f} s, "
          f"payload {len(str(snapshot.payload)) / 1024:.0f} KiB")
    print(f"{'page':<16}{'first ms':>9}{'median ms':>10}{'max ms':>9}{'queries':>9}  bytes")
    worst = 0.0
    for name, url in pages.items():
        cold = _time(client, url)  # first request: cold caches (templates, throughput counters)
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"{name:<16}{cold:>9.1f}{median:>10.1f}{max(times):>9.1f}{len(ctx.captured_queries):>9}  "
              f"{len(response.content):,}")
        if os.environ.get("SHOW_QUERIES"):
            for q in sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:3]:
                print(f"    {float(q['time']) * 1000:7.1f} ms  {q['sql'][:220]}")

    t0 = time.perf_counter()
    agreement_compute(project, n_boot=n_boot)
    t_peer = (time.perf_counter() - t0) * 1000
    agreement_ms = statistics.median(
        [_time(client, pages["agreement"]) for _ in range(repeat)])
    print(f"peer: agreement figures computed on request (agreement_compute, n_boot={n_boot}) {t_peer:,.0f} ms "
          f"vs the agreement page reading the snapshot {agreement_ms:.1f} ms ({t_peer / agreement_ms:,.0f}x)")
    print(f"slowest page {worst:.1f} ms: {'under' if worst < GOAL_MS else 'OVER'} the {GOAL_MS:.0f} ms goal")


def _time(client: object, url: str) -> float:
    t0 = time.perf_counter()
    client.get(url)  # type: ignore[attr-defined]
    return (time.perf_counter() - t0) * 1000


if __name__ == "__main__":
    main()
