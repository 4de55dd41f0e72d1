"""Celery wrappers for scoring; names and queues from annotation.jobs (SCORE_IMAGES on "gpu",
PRIORITY_RECOMPUTE on "default").

The gpu worker runs one task at a time with one message reserved:
``celery -A config worker -Q gpu --concurrency 1 --prefetch-multiplier 1`` (the model is loaded
once per worker process and kept). Tasks are acks_late: a worker killed mid-run leaves the
message on the queue and the rerun scores exactly the images still missing (services.images_score).

`priority_recompute_task` is named outside the "annotation.scoring.tasks.*" pattern so it runs on
the default queue: it needs no GPU and must not wait behind a long scoring run.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from annotation import jobs
from annotation.models import Project

from .services import images_score_job, priority_recompute, priority_summary_dict


@shared_task(bind=True, name=jobs.SCORE_IMAGES.name, acks_late=True,
             reject_on_worker_lost=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def score_images_task(self: Any, project_id: int, image_ids: list[int] | None = None,  # noqa: ARG001
                      model_dir: str | None = None) -> dict[str, Any]:
    """Score the project's images still missing a score of the configured model version (all of
    them, or those in `image_ids`). Without a configured model: does nothing. Idempotent."""
    return images_score_job(Project.objects.get(pk=project_id), image_ids=image_ids, model_dir=model_dir)


@shared_task(name=jobs.PRIORITY_RECOMPUTE.name, acks_late=True,
             soft_time_limit=300, time_limit=360)
def priority_recompute_task(project_id: int) -> dict[str, Any]:
    """Recompute the queue priorities of a project (default queue). Idempotent."""
    return priority_summary_dict(priority_recompute(Project.objects.get(pk=project_id)))
