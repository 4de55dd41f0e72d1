"""The scoring task on a real in-process Celery worker (Redis broker), the command, routing."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from annotation.models import Image, ModelScore
from annotation.scoring.services import scoring_enqueue_for_images
from tests.factories import image_bytes, make_image, make_project


def image_with_file(project) -> Image:  # type: ignore[no-untyped-def]
    image = make_image(project)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes(size=(40, 40))), save=True)
    return image


def test_tasks_are_routed_to_their_queues():
    import annotation.scoring.tasks  # noqa: F401  registers the tasks
    from config.celery import app

    router = app.amqp.router
    assert router.route({}, "annotation.scoring.tasks.score_images_task")["queue"].name == "gpu"
    assert router.route({}, "annotation.scoring.priority_recompute_task")["queue"].name == "default"


def test_score_task_scores_a_project_on_a_real_worker(celery_worker_real, settings, tiny_model_dir):
    from annotation.scoring.tasks import score_images_task

    settings.EMORATE_SCORING_MODEL_DIR = str(tiny_model_dir)
    project = make_project()
    images = [image_with_file(project) for _ in range(5)]
    result = score_images_task.apply_async((project.pk,), queue="gpu").get(timeout=120)
    assert result["stored"] == 5 and result["device"] == "cpu"
    assert set(ModelScore.objects.filter(project=project).values_list("image_id", flat=True)) == {
        im.pk for im in images}
    # Restarted or duplicated deliveries store nothing twice.
    again = score_images_task.apply_async((project.pk,), queue="gpu").get(timeout=120)
    assert again["stored"] == 0 and ModelScore.objects.filter(project=project).count() == 5
    # New images after an import: the hook enqueues only when the transaction commits.
    late = image_with_file(project)
    assert scoring_enqueue_for_images(project, [late.pk]) is True
    for _ in range(200):
        if ModelScore.objects.filter(image=late).exists():
            break
        import time

        time.sleep(0.05)
    assert ModelScore.objects.filter(image=late).count() == 1


@pytest.mark.django_db(transaction=True)
def test_score_images_command(tiny_model_dir):
    project = make_project(slug="faces")
    for _ in range(3):
        image_with_file(project)
    out = io.StringIO()
    call_command("score_images", "--project", "faces", "--model", str(tiny_model_dir), "--batch-size", "2",
                 stdout=out, stderr=io.StringIO())
    assert "scored 3 of 3 images" in out.getvalue() and "queue priorities: 3 of 3" in out.getvalue()
    out = io.StringIO()
    call_command("score_images", "--project", "faces", "--model", str(tiny_model_dir), stdout=out)
    assert "scored 0 of 0 images" in out.getvalue()
    with pytest.raises(CommandError, match="missing head file|does not exist"):
        call_command("score_images", "--project", "faces", "--model", str(tiny_model_dir / "backbone"),
                     stdout=io.StringIO())
