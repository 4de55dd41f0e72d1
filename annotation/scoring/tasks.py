"""Celery wrappers for scoring. Routing (config/settings): "annotation.scoring.tasks.*" -> queue "gpu".

The gpu worker runs one task at a time with one message reserved:
``celery -A config worker -Q gpu --concurrency 1 --prefetch-multiplier 1`` (the model is loaded
once per worker process and kept). Tasks are acks_late: a worker killed mid-run leaves the
message on the queue and the rerun scores exactly the images still missing (services.images_score).

`priority_recompute_task` is named outside that pattern so it runs on the default queue: it
needs no GPU and must not wait behind a long scoring run.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from annotation.models import Project


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=6 * 3600,
             time_limit=6 * 3600 + 300)
def score_images_task(self: Any, project_id: int, image_ids: list[int] | None = None,  # noqa: ARG001
                      model_dir: str | None = None) -> dict[str, Any]:
    """Score the project's images still missing a score of the configured model version (all of
    them, or those in `image_ids`). Without a configured model: does nothing. Idempotent."""
    from .contracts import ScoringNotConfigured
    from .services import images_score, scoring_progress_clear, scoring_progress_set

    project = Project.objects.get(pk=project_id)
    try:
        summary = images_score(project, model_dir=model_dir, image_ids=image_ids,
                               progress=lambda done, total: scoring_progress_set(project, done, total))
    except ScoringNotConfigured as exc:
        return {"skipped": str(exc)}
    finally:
        scoring_progress_clear(project)
    return {"stored": summary.stored, "pending": summary.pending, "failed": len(summary.failed),
            "model": summary.model_name, "model_version": summary.model_version, "device": summary.device,
            "seconds": round(summary.seconds, 3)}


@shared_task(name="annotation.scoring.priority_recompute_task", acks_late=True, soft_time_limit=300,
             time_limit=360)
def priority_recompute_task(project_id: int) -> dict[str, Any]:
    """Recompute the queue priorities of a project (default queue). Idempotent."""
    from .services import priority_recompute, priority_summary_dict

    project = Project.objects.get(pk=project_id)
    return priority_summary_dict(priority_recompute(project))
