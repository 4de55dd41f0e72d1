"""The job seam: the only module that hands work to Celery.

Services say *what* should run (a `Job`: the task's registered name and its queue) and call
`enqueue`; they never import a task module, so there is no services <-> tasks cycle. Tasks
(annotation/tasks.py, annotation/scoring/tasks.py) declare their name and queue from the same
`Job` constants, so the name a service sends and the name a worker registers cannot drift apart;
a task's queue is its Job's (Celery's per-task `queue` attribute is deprecated: `send` names the
queue, and the task_routes setting must agree with `task_routes()`).

`enqueue` sends when the caller's transaction commits (`transaction.on_commit`; at once outside a
transaction), robustly: a broker outage is logged, never turned into an error for the request that
wrote the data (the periodic agreement refresh and the idempotent tasks catch up).

The task object is looked up in the Celery app's registry by name (so sending respects
CELERY_TASK_ALWAYS_EAGER, which the demo uses without Redis), its module imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import transaction


class Queue(StrEnum):
    """The Celery queues (docker-compose starts a worker for each; routes in settings agree)."""

    DEFAULT = "default"
    AGREEMENT = "agreement"
    RELEASES = "releases"
    GPU = "gpu"


@dataclass(frozen=True)
class Job:
    """A kind of background work: the registered task name, the queue it runs on and the module that
    defines the task (imported by name on first use, never statically: no cycle)."""

    name: str
    queue: Queue
    module: str = "annotation.tasks"


AGREEMENT_SNAPSHOT = Job("annotation.tasks.agreement_snapshot_task", Queue.AGREEMENT)
AGREEMENT_REFRESH_ALL = Job("annotation.tasks.agreement_refresh_all_task", Queue.AGREEMENT)
RELEASE_BUILD = Job("annotation.tasks.release_build_task", Queue.RELEASES)
SCORE_IMAGES = Job("annotation.scoring.tasks.score_images_task", Queue.GPU, "annotation.scoring.tasks")
# Named outside the scoring.tasks pattern: it needs no GPU and must not wait behind a scoring run.
PRIORITY_RECOMPUTE = Job("annotation.scoring.priority_recompute_task", Queue.DEFAULT, "annotation.scoring.tasks")

# Webhooks (annotation.services.webhooks): one delivery attempt (retried by the task), and the sweep
# that finds images which reached their target (beat).
WEBHOOK_DELIVER = Job("annotation.tasks.webhook_deliver_task", Queue.DEFAULT)
WEBHOOK_SWEEP = Job("annotation.tasks.webhooks_sweep_task", Queue.DEFAULT)
# Rounds (annotation.services.batches): the finished / behind alerts of every open round (beat), so a
# round that stalled is noticed although no rating (and no snapshot) comes.
BATCH_ALERTS = Job("annotation.tasks.batch_alerts_task", Queue.DEFAULT)

# The measurement model (annotation.services.rater_model), fitted after each agreement snapshot (#18).
RATER_MODEL = Job("annotation.tasks.agreement_rater_model_task", Queue.AGREEMENT)

JOBS: tuple[Job, ...] = (AGREEMENT_SNAPSHOT, AGREEMENT_REFRESH_ALL, RELEASE_BUILD, SCORE_IMAGES, PRIORITY_RECOMPUTE,
                         WEBHOOK_DELIVER, WEBHOOK_SWEEP, BATCH_ALERTS, RATER_MODEL)


def task_routes() -> dict[str, dict[str, str]]:
    """{task name: {"queue": name}} for every job: the routing table Celery's task_routes setting
    must agree with (tests/annotation/test_jobs.py checks it does), so a task sent by any other
    path (beat, a test, celery call) lands on the same queue as through `enqueue`."""
    return {job.name: {"queue": job.queue.value} for job in JOBS}


def task_of(job: Job) -> Any:
    """The registered Celery task of `job` (its module imported on first use)."""
    from celery import current_app

    if job.name not in current_app.tasks:
        importlib.import_module(job.module)
    return current_app.tasks[job.name]


def send(job: Job, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Send `job` now (no transaction hook). Raises when the broker is unreachable."""
    task = task_of(job)
    options: dict[str, Any] = {"queue": job.queue.value}
    if countdown is not None:
        options["countdown"] = countdown
    task.apply_async(args, kwargs or None, **options)


def enqueue(job: Job, *args: Any, countdown: float | None = None, on_error: Callable[[], object] | None = None,
            **kwargs: Any) -> None:
    """Send `job(*args, **kwargs)` once the current transaction commits (at once outside one).
    A failure to send is logged by Django (robust on_commit) after `on_error` ran."""

    def go() -> None:
        try:
            send(job, *args, countdown=countdown, **kwargs)
        except Exception:
            if on_error is not None:
                on_error()
            raise

    transaction.on_commit(go, robust=True)
