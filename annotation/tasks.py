"""Celery tasks: thin wrappers that load ids and call one service. Each declares its name and queue
from annotation.jobs, the one place that enqueues work (services never import this module)."""

from __future__ import annotations

from celery import shared_task

from annotation import jobs
from annotation.models import Project, Release
from annotation.services.agreement_snapshot import (
    agreement_refresh_stale,
    agreement_snapshot_create,
    agreement_snapshot_started,
)
from annotation.services.batches import batch_alerts_sweep
from annotation.services.rater_model import rater_model_attach, rater_model_schedule
from annotation.services.releases import release_advance
from annotation.services.webhooks import (
    DeliveryFailed,
    retry_countdown,
    webhook_deliver,
    webhooks_target_sweep,
)


@shared_task(bind=True, name=jobs.AGREEMENT_SNAPSHOT.name, acks_late=True,
             soft_time_limit=900, time_limit=960, max_retries=2)
def agreement_snapshot_task(self, project_id: int, level: str = "interval", n_boot: int = 1000,  # type: ignore[no-untyped-def]
                            seed: int = 0) -> int:
    """Compute (or reuse) the project's agreement snapshot; returns its id. Idempotent."""
    project = Project.objects.get(pk=project_id)
    agreement_snapshot_started(project)
    snapshot = agreement_snapshot_create(project, level=level, n_boot=n_boot, seed=seed)
    rater_model_schedule(snapshot)  # its own job (#18): the snapshot is done without waiting for it
    return snapshot.pk


@shared_task(name=jobs.RATER_MODEL.name, acks_late=True, soft_time_limit=600, time_limit=660)
def agreement_rater_model_task(snapshot_id: int) -> bool:
    """Fit the measurement model and store it with the snapshot. Idempotent."""
    return rater_model_attach(snapshot_id)


@shared_task(name=jobs.AGREEMENT_REFRESH_ALL.name, acks_late=True)
def agreement_refresh_all_task() -> int:
    """Periodic: queue a snapshot for every project whose ratings changed since its last snapshot."""
    return agreement_refresh_stale()


@shared_task(bind=True, name=jobs.RELEASE_BUILD.name, acks_late=True,
             soft_time_limit=3600, time_limit=3700)
def release_build_task(self, release_id: int, publish: bool = False) -> str:  # type: ignore[no-untyped-def]
    """Build (and optionally publish) a release; returns its status ("busy" when another run holds
    it). Restartable: see annotation.services.releases.release_advance."""
    done = release_advance(Release.objects.get(pk=release_id), publish=publish, rebuild=True, busy_ok=True)
    return done if isinstance(done, str) else done.status


@shared_task(bind=True, name=jobs.WEBHOOK_DELIVER.name, acks_late=True, max_retries=None,
             soft_time_limit=60, time_limit=90)
def webhook_deliver_task(self, delivery_id: int) -> str:  # type: ignore[no-untyped-def]
    """One delivery attempt; a failed one is tried again after an exponential backoff until the
    service marks it failed (EMORATE_WEBHOOK_MAX_ATTEMPTS). Returns the delivery's status."""
    try:
        delivery = webhook_deliver(delivery_id)
        return str(delivery.status) if delivery is not None else "gone"
    except DeliveryFailed as exc:
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries + 1)) from None


@shared_task(name=jobs.BATCH_ALERTS.name, acks_late=True)
def batch_alerts_task() -> int:
    """Periodic: the finished / behind alerts of every open round; returns how many were raised."""
    return len(batch_alerts_sweep())


@shared_task(name=jobs.WEBHOOK_SWEEP.name, acks_late=True)
def webhooks_sweep_task() -> int:
    """Periodic: image.target_reached deliveries for images that reached their target."""
    return webhooks_target_sweep()
