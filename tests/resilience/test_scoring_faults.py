"""A scoring worker SIGKILLed mid-run: nothing is duplicated and a returning worker scores the rest.

The worker is a standalone `celery -A config worker` process on queue "gpu", loading a tiny
EmpathicInsight-Face folder (real loader, random weights) from EMORATE_SCORING_MODEL_DIR. The
tiny model is made wide enough (hidden 256) that 400 images take a few seconds on a CPU, so the
kill lands between batches that are already committed and batches still to come.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count

from annotation.models import Image, ModelScore
from annotation.services.image_import import image_import_one
from tests.factories import image_bytes, make_project
from tests.support.processes import RedisServer, Worker, wait_for

N_IMAGES = 400


@pytest.fixture(scope="module")
def wide_tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from annotation.scoring.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-siglip2-wide"), kind="siglip2-vision", hidden=256,
                            neutral_means=True)


def score_counts(project_id: int) -> tuple[int, int, int]:
    """(score rows, distinct images scored, largest number of rows for one image and model version)."""
    rows = ModelScore.objects.filter(project_id=project_id)
    most = rows.values("image_id", "model_name", "model_version").annotate(n=Count("id")).order_by("-n").first()
    return rows.count(), rows.values("image_id").distinct().count(), int(most["n"]) if most else 0


@pytest.mark.django_db(transaction=True)
def test_worker_killed_during_a_scoring_run_scores_every_image_exactly_once(
        redis_server: RedisServer, settings: Any, wide_tiny_model_dir: Path) -> None:
    from annotation.scoring.tasks import score_images_task
    from config.celery import app

    project = make_project(slug="faces")
    for i in range(N_IMAGES):  # lossless, all distinct: no DuplicateImage from equal solid colours
        image_import_one(project=project, name=f"{i}.png", data=image_bytes("PNG", color=(i % 256, i // 256, 77)),
                         meta=None)
    image_ids = set(Image.objects.filter(project=project).values_list("pk", flat=True))
    assert len(image_ids) == N_IMAGES

    worker = Worker(redis_server.url, "gpu", str(settings.MEDIA_ROOT))
    worker.env["EMORATE_SCORING_MODEL_DIR"] = str(wide_tiny_model_dir)
    worker.env["HF_HUB_OFFLINE"] = worker.env["TRANSFORMERS_OFFLINE"] = "1"
    worker.start()
    try:
        with app.connection_for_write(redis_server.url) as conn:
            score_images_task.apply_async((project.pk,), connection=conn, queue="gpu")
        # Some batches committed, not all: kill the worker without letting it finish or ack.
        wait_for(lambda: 0 < ModelScore.objects.filter(project=project).count(), timeout=120, step=0.02)
        worker.kill()
        rows, scored, most = score_counts(project.pk)
        print(f"worker killed with {rows} of {N_IMAGES} images scored")
        assert 0 < rows < N_IMAGES, f"the kill did not land mid-run ({rows} of {N_IMAGES} scored)"
        assert scored == rows and most == 1  # whole batches only, one row per image and version
        assert {v for (v,) in ModelScore.objects.filter(project=project).values_list("model_version")} != {""}

        time.sleep(4)  # past the visibility timeout (3 s here): the returning worker restores the task
        assert score_counts(project.pk) == (rows, scored, most)  # nothing moved while no worker ran
        worker.start()
        wait_for(lambda: ModelScore.objects.filter(project=project).count() >= N_IMAGES, timeout=120)
        time.sleep(1)  # a late duplicate delivery would show up here
        rows_after, scored_after, most_after = score_counts(project.pk)
        assert (rows_after, scored_after, most_after) == (N_IMAGES, N_IMAGES, 1)
        assert set(ModelScore.objects.filter(project=project).values_list("image_id", flat=True)) == image_ids
        assert ModelScore.objects.filter(project=project).values("model_version").distinct().count() == 1
        # the redelivered run scored exactly the images still missing, nothing twice
        assert f"'stored': {N_IMAGES - rows}, 'pending': {N_IMAGES - rows}" in worker.output()
    finally:
        worker.stop()
        print(worker.output()[-3000:])
