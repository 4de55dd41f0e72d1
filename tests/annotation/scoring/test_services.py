"""Scoring services on the real database with the tiny model: once per image and model version,
restart safety, pushed scores, status without a model."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Image, ModelScore
from annotation.scoring import services
from annotation.scoring.backends import load_scorer
from annotation.scoring.contracts import ScoreValidationError, ScoringNotConfigured
from annotation.scoring.selectors import model_score_matrix, scoring_status
from annotation.scoring.services import images_score, model_scores_push, scoring_enqueue_for_images
from annotation.taxonomy import N_EMOTIONS
from tests.factories import image_bytes, make_image, make_project


def image_with_file(project, **extra) -> Image:
    image = make_image(project, **extra)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes(size=(40, 40))), save=True)
    return image


@pytest.fixture
def project_with_images(db):
    project = make_project()
    images = [image_with_file(project) for _ in range(7)]
    make_image(project)  # a placeholder without a file: never scored
    image_with_file(project, flagged=True)  # flagged: never scored
    return project, images


@pytest.mark.django_db(transaction=True)
def test_scores_once_per_image_and_model_version(project_with_images, tiny_model_dir, tiny_model_dir_b):
    project, images = project_with_images
    first = images_score(project, model_dir=str(tiny_model_dir), batch_size=3, recompute_priority=False)
    assert first.pending == 7 and first.stored == 7 and not first.failed
    rows = ModelScore.objects.filter(project=project)
    assert rows.count() == 7 and {r.image_id for r in rows} == {im.pk for im in images}
    row = rows.first()
    assert row is not None and len(row.scores) == N_EMOTIONS and row.model_version == first.model_version
    assert row.model_name == "empathic-insight-face" and row.seconds is not None

    again = images_score(project, model_dir=str(tiny_model_dir), recompute_priority=False)
    assert again.pending == 0 and again.stored == 0 and rows.count() == 7

    # New weights = a new version: everything is scored again, the old scores stay.
    other = images_score(project, model_dir=str(tiny_model_dir_b), recompute_priority=False)
    assert other.stored == 7 and other.model_version != first.model_version
    assert ModelScore.objects.filter(project=project).count() == 14
    assert set(rows.values_list("model_version", flat=True)) == {first.model_version, other.model_version}
    matrix = model_score_matrix(project, "empathic-insight-face", first.model_version)
    assert matrix.image_ids.tolist() == sorted(im.pk for im in images) and matrix.scores.shape == (7, N_EMOTIONS)
    stored = dict(ModelScore.objects.filter(model_version=first.model_version).values_list("image_id", "scores"))
    assert matrix.scores[0].tolist() == pytest.approx(stored[images[0].pk], abs=1e-6)


@pytest.mark.django_db(transaction=True)
def test_a_run_killed_half_way_loses_and_duplicates_nothing(project_with_images, tiny_model_dir):
    project, images = project_with_images
    scorer = load_scorer(tiny_model_dir, device="cpu")

    class WorkerKilled(Exception):
        pass

    def die_after_two_batches(done: int, total: int) -> None:
        if done >= 4:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        images_score(project, scorer=scorer, batch_size=2, progress=die_after_two_batches, recompute_priority=False)
    assert ModelScore.objects.filter(project=project).count() == 4  # two committed batches

    rerun = images_score(project, scorer=scorer, batch_size=2, recompute_priority=False)
    assert rerun.pending == 3 and rerun.stored == 3
    assert ModelScore.objects.filter(project=project).count() == 7
    # A batch replayed after a crash between insert and acknowledgement stores nothing twice.
    assert services._store_batch(project, scorer, [images[0].pk], [[1.0] * N_EMOTIONS], None) == 0


@pytest.mark.django_db(transaction=True)
def test_unreadable_image_is_reported_and_stays_pending(project_with_images, tiny_model_dir):
    project, images = project_with_images
    broken = images[2]
    with broken.file.storage.open(broken.file.name, "wb") as fh:
        fh.write(b"not a jpeg")
    summary = images_score(project, model_dir=str(tiny_model_dir), recompute_priority=False)
    assert summary.stored == 6 and list(summary.failed) == [broken.pk]
    assert not ModelScore.objects.filter(image=broken).exists()


@pytest.mark.django_db
def test_without_a_model_nothing_is_scored_and_the_status_says_so(settings, project_with_images):
    project, images = project_with_images
    settings.EMORATE_SCORING_MODEL_DIR = ""
    status = scoring_status(project)
    assert not status.configured and "no model is configured" in status.message
    assert "docs/scoring.md" in status.message
    assert scoring_enqueue_for_images(project, [im.pk for im in images]) is False
    with pytest.raises(ScoringNotConfigured, match="EMORATE_SCORING_MODEL_DIR"):
        images_score(project)
    settings.EMORATE_SCORING_MODEL_DIR = "/nonexistent/models"
    assert "does not exist" in scoring_status().message


@pytest.mark.django_db
def test_status_counts_scored_images(settings, project_with_images, tiny_model_dir):
    project, images = project_with_images
    settings.EMORATE_SCORING_MODEL_DIR = str(tiny_model_dir)
    model_scores_push(project, "empathic-insight-face", "abc", [(images[0].name, [1.0] * N_EMOTIONS)])
    status = scoring_status(project)
    assert status.configured and status.n_scored == 1 and status.n_images == 7
    assert "1 of 7 images scored" in status.message


@pytest.mark.django_db
def test_pushed_scores_are_validated_all_or_nothing(project_with_images):
    project, images = project_with_images
    good = [0.5] * N_EMOTIONS
    with pytest.raises(ScoreValidationError) as err:
        model_scores_push(project, "external", "v1", [
            (images[0].name, good),
            ("nope.jpg", good),
            (images[1].sha256, [0.5] * 39),
            (images[2].name, [float("nan")] + [0.5] * 39),
            (images[3].name, [99.0] * N_EMOTIONS),
            (images[0].sha256, good),
        ])
    text = "\n".join(err.value.errors)
    assert "item 1: no image 'nope.jpg'" in text
    assert "item 2" in text and "must have 40 values" in text
    assert "item 3" in text and "not finite" in text
    assert "item 4" in text and "outside the allowed range" in text
    assert "item 5" in text and "appears twice" in text
    assert not ModelScore.objects.exists()

    summary = model_scores_push(project, "external", "v1", [(images[0].name, good), (images[1].sha256, good)])
    assert (summary.stored, summary.already_present) == (2, 0)
    summary = model_scores_push(project, "external", "v1", [(images[0].name, [1.0] * N_EMOTIONS)])
    assert (summary.stored, summary.already_present) == (0, 1)
    assert ModelScore.objects.get(image=images[0]).scores == good  # never overwritten
    with pytest.raises(ScoreValidationError, match="model_name"):
        model_scores_push(project, "", "v1", [])


@pytest.mark.django_db
def test_pending_query_is_one_statement(project_with_images):
    project, _ = project_with_images
    with CaptureQueriesContext(connection) as ctx:
        pending = services.images_to_score(project, "m", "v")
    assert len(pending) == 7 and len(ctx.captured_queries) == 1
