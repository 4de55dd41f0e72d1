"""The job seam (annotation/jobs.py): every job's task is registered under its name, Celery's routes
agree with the jobs' queues, and enqueue sends on commit to the job's queue."""

from __future__ import annotations

import importlib

import pytest

from annotation import jobs


def test_every_job_is_a_registered_task_routed_to_its_queue():
    from config.celery import app

    router = app.amqp.router
    for job in jobs.JOBS:
        assert jobs.task_of(job).name == job.name, job
        assert router.route({}, job.name)["queue"].name == job.queue.value, job
    assert {name: route["queue"] for name, route in jobs.task_routes().items()} == {
        job.name: job.queue.value for job in jobs.JOBS}


def test_every_task_of_the_job_modules_is_a_job():
    from celery import Task

    found = set()
    for module in {job.module for job in jobs.JOBS}:
        mod = importlib.import_module(module)
        found |= {obj.name for obj in vars(mod).values() if isinstance(obj, Task)}
    assert found == {job.name for job in jobs.JOBS}


@pytest.mark.django_db
def test_enqueue_sends_on_commit_to_the_jobs_queue(monkeypatch, django_capture_on_commit_callbacks):
    from annotation.tasks import release_build_task

    sent: list[tuple] = []
    monkeypatch.setattr(release_build_task, "apply_async",
                        lambda args=(), kwargs=None, **options: sent.append((args, kwargs, options)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        jobs.enqueue(jobs.RELEASE_BUILD, 7, publish=True)
    assert sent == [] and len(callbacks) == 1
    callbacks[0]()
    assert sent == [((7,), {"publish": True}, {"queue": "releases"})]


@pytest.mark.django_db
def test_a_failed_send_runs_on_error_and_does_not_fail_the_caller(monkeypatch, django_capture_on_commit_callbacks):
    from annotation.tasks import agreement_snapshot_task

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("broker down")

    monkeypatch.setattr(agreement_snapshot_task, "apply_async", broken)
    withdrawn: list[bool] = []
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(jobs.AGREEMENT_SNAPSHOT, 1, on_error=lambda: withdrawn.append(True))
    assert withdrawn == [True]


@pytest.mark.django_db
def test_the_refresh_task_and_command_queue_snapshots_of_projects_whose_ratings_changed(
        monkeypatch, django_capture_on_commit_callbacks):
    import io

    from django.core.management import call_command

    from annotation.services.agreement_snapshot import agreement_snapshot_create
    from annotation.tasks import agreement_refresh_all_task, agreement_snapshot_task
    from tests.factories import make_project
    from tests.support.seed import seed_rated_project

    sent: list[int] = []
    monkeypatch.setattr(agreement_snapshot_task, "apply_async",
                        lambda args=(), kwargs=None, **options: sent.append(args[0]))
    changed = seed_rated_project(slug="refresh", n_images=6, n_raters=3, per_image=2)["project"]
    current = seed_rated_project(slug="refresh-current", n_images=6, n_raters=3, per_image=2)["project"]
    agreement_snapshot_create(current, n_boot=0)  # its newest snapshot has its ratings
    make_project(slug="refresh-empty")  # no ratings: nothing to compute
    from annotation.models import Image

    image = Image.objects.filter(project=changed).order_by("id").first()
    assert image is not None
    Image.objects.filter(pk=image.pk).update(flagged=True)  # a flagged image: its snapshot is stale now
    # sent at once in a worker (no transaction); the test's transaction holds them until "commit"
    with django_capture_on_commit_callbacks(execute=True):
        assert agreement_refresh_all_task.apply().get() == 1
    assert sent == [changed.pk]
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("agreement_refresh", stdout=out)
    assert sent == [changed.pk, changed.pk] and "queued 1" in out.getvalue()
