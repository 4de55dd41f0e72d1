"""Celery tasks: thin wrappers that load ids and call one service. Routes: config/settings."""

from __future__ import annotations

from celery import shared_task

from annotation.models import Project
from annotation.services.agreement_snapshot import agreement_snapshot_create, ratings_fingerprint


@shared_task(bind=True, acks_late=True, soft_time_limit=900, time_limit=960, max_retries=2)
def agreement_snapshot_task(self, project_id: int, level: str = "interval", n_boot: int = 1000,  # type: ignore[no-untyped-def]
                            seed: int = 0) -> int:
    """Compute (or reuse) the project's agreement snapshot; returns its id. Idempotent."""
    from django.core.cache import cache

    from annotation.selectors_dashboard import recompute_queued_key

    project = Project.objects.get(pk=project_id)
    cache.delete(recompute_queued_key(project.pk))  # a lead's "queued" mark ends when a worker starts
    return agreement_snapshot_create(project, level=level, n_boot=n_boot, seed=seed).pk


@shared_task(acks_late=True)
def agreement_refresh_all_task() -> int:
    """Periodic: queue a snapshot for every project whose ratings changed since its last snapshot."""
    from annotation.models import AgreementSnapshot, SnapshotStatus

    queued = 0
    for project in Project.objects.all():
        latest = AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE).first()
        if latest is None or latest.fingerprint != ratings_fingerprint(project):
            if project.ratings.exists():
                agreement_snapshot_task.delay(project.pk)
                queued += 1
    return queued


@shared_task(bind=True, acks_late=True, soft_time_limit=3600, time_limit=3700)
def release_build_task(self, release_id: int, publish: bool = False) -> str:  # type: ignore[no-untyped-def]
    """Build (and optionally publish) a release; returns its status. Restartable: a redelivered
    task after a worker died rebuilds from scratch; a published release is left alone."""
    from annotation.models import Release, ReleaseStatus
    from annotation.services.releases import ReleaseBusy, release_build, release_publish

    release = Release.objects.get(pk=release_id)
    if release.status == ReleaseStatus.PUBLISHED:
        return release.status
    if release.status == ReleaseStatus.BUILT and publish:
        return release_publish(release).status
    try:
        release = release_build(release)
    except ReleaseBusy:
        return "busy"  # a duplicate delivery while the first run is alive: that run finishes the job
    if publish:
        release = release_publish(release)
    return release.status
