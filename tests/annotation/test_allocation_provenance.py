"""Allocation provenance (issue #17): every assignment records why it was made, and the images of
the model-independent evaluation sample never get an allocation for the model gap. On PostgreSQL,
through the real claim (the careful and the one-statement way) and the real priority recompute."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from django.core.files.base import ContentFile

from annotation.models import AllocationReason, Assignment, Image, Rating
from annotation.rating import assignment_claim, rating_submit
from annotation.rating import claim as queue
from annotation.scoring import priority as prio
from annotation.scoring.services import model_scores_push, priority_recompute
from annotation.services.adjudication import image_send_back
from annotation.taxonomy import N_EMOTIONS
from tests.factories import add_member, image_bytes, make_image, make_project, make_user


def _image(project, **extra) -> Image:  # type: ignore[no-untyped-def]
    image = make_image(project, **extra)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


def test_dominant_reason_is_the_largest_weighted_term_and_coverage_when_nothing_counts() -> None:
    ids = np.arange(1, 6)
    z = np.zeros(5)
    terms = prio.PriorityTerms(image_ids=ids, disagreement=np.array([0.9, 0, 0, 0.1, 0]),
                               model_gap=np.array([0, 0.8, 0, 0, 0]), model_signal=np.array([0, 0, 0.9, 0, 0]),
                               missing=np.array([0.5, 0.5, 0.5, 0.1, 0]), quota=np.array([0, 0, 0, 0.9, 0]),
                               jitter=np.full(5, 0.99), priority=z, n_ratings=np.zeros(5, np.int64))
    w = prio.resolve_weights({"disagreement": 1.0, "model_gap": 1.0, "model_signal": 1.0, "missing": 0.25,
                              "quota": 1.0})
    assert prio.dominant_reasons(terms, w).tolist() == ["disagreement", "model_gap", "model_gap", "quota",
                                                        "coverage"]
    # a weight of 0 switches its term off for the provenance as for the priority
    off = prio.resolve_weights({"model_gap": 0.0, "model_signal": 0.0, "missing": 0.25})
    assert prio.dominant_reasons(terms, off).tolist()[1:3] == ["coverage", "coverage"]


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [False, True], ids=["careful", "fast"])
def test_model_independent_images_carry_no_model_gap_allocations(fast, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A model far from the experts on every image: the recompute makes the model gap the dominant
    term of most images, except on the held-out sample; the claims then copy exactly that."""
    monkeypatch.setattr(queue, "_FAST_CLAIM", fast)
    rng = np.random.default_rng(17)
    project = make_project(target_ratings=3, priority_weights={"model_gap": 3.0, "model_signal": 3.0,
                                                               "model_independent_share": 0.3})
    first, *raters = [make_user() for _ in range(4)]
    add_member(project, first, *raters)
    images = [_image(project) for _ in range(60)]
    truth = rng.integers(0, 8, (60, N_EMOTIONS))
    for im, t in zip(images, truth, strict=True):  # one expert rating each: the model gap is defined
        Rating.objects.create(project=project, image=im, rater=first, values=t.tolist(), scale_max=7,
                              taxonomy_version=project.taxonomy_version)
    model_scores_push(project, "m", "1", [(im.name, (7 - t).astype(float).tolist())
                                          for im, t in zip(images, truth, strict=True)])
    priority_recompute(project)

    held = {im.pk for im in images if prio.model_independent([im.pk], 0.3)[0]}
    assert 8 <= len(held) <= 30
    stored = dict(Image.objects.filter(project=project).values_list("pk", "priority_reason"))
    assert all(stored[pk] != "model_gap" for pk in held)
    assert sum(stored[pk] == "model_gap" for pk in stored if pk not in held) >= 0.8 * (60 - len(held))

    for rater in raters:
        while (a := assignment_claim(project=project, rater=rater)) is not None:
            rating_submit(assignment=a, rater=rater, values=[1] * N_EMOTIONS)
    leases = list(Assignment.objects.filter(project=project).values_list("image_id", "allocation_reason"))
    assert len(leases) == 60 * 2  # every image topped up to its target of 3
    assert all(why in AllocationReason.values and why for _, why in leases)
    on_held = Counter(why for pk, why in leases if pk in held)
    assert on_held["model_gap"] == 0 and sum(on_held.values()) == 2 * len(held)
    elsewhere = Counter(why for pk, why in leases if pk not in held)
    assert elsewhere["model_gap"] >= 0.5 * sum(elsewhere.values())  # the check can fail: the term is used
    # each lease copied its image's reason as it stood at claim time
    assert all(why == stored[pk] for pk, why in leases)


@pytest.mark.django_db
@pytest.mark.parametrize("fast", [False, True], ids=["careful", "fast"])
def test_a_lead_sending_an_image_back_is_recorded_as_sent_back(fast, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(queue, "_FAST_CLAIM", fast)
    project = make_project(target_ratings=1)
    lead, early, late = make_user(), make_user(), make_user()
    add_member(project, early, late)
    image = _image(project)
    a = assignment_claim(project=project, rater=early)
    assert a is not None and Assignment.objects.get(pk=a.pk).allocation_reason == "coverage"
    rating_submit(assignment=a, rater=early, values=[2] * N_EMOTIONS)
    assert assignment_claim(project=project, rater=late) is None  # at its target
    image_send_back(image=image, actor=lead, extra=1)
    b = assignment_claim(project=project, rater=late)
    assert b is not None and b.image_id == image.pk
    assert Assignment.objects.get(pk=b.pk).allocation_reason == "sent_back"


@pytest.mark.django_db
def test_a_releases_raw_ratings_say_why_each_rating_was_collected() -> None:
    import pyarrow.parquet as pq

    from annotation.services.releases import release_build, release_create, release_dir

    project = make_project(slug="why", target_ratings=2)
    raters = [make_user() for _ in range(3)]
    add_member(project, *raters)
    images = [_image(project) for _ in range(12)]
    for rater in raters[:2]:
        while (a := assignment_claim(project=project, rater=rater)) is not None:
            rating_submit(assignment=a, rater=rater, values=[3] * N_EMOTIONS)
    # one rating stored without a lease (as import_ratings does) and one lease from before provenance
    Rating.objects.create(project=project, image=images[0], rater=raters[2], values=[1] * N_EMOTIONS, scale_max=7,
                          taxonomy_version=project.taxonomy_version)
    Assignment.objects.filter(project=project, image=images[1]).update(allocation_reason="")
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert release.status == "built", release.error
    raw = pq.read_table(release_dir(release) / "raw" / "ratings.parquet").to_pandas()
    assert list(raw.columns[:5]) == ["sha256", "file_name", "split", "rater", "allocation_reason"]
    assert len(raw) == 25
    by_image = raw.groupby("sha256")["allocation_reason"].apply(sorted).to_dict()
    assert by_image[images[0].sha256] == ["coverage", "coverage", "imported"]
    assert by_image[images[1].sha256] == ["unrecorded", "unrecorded"]
    assert all(v == ["coverage", "coverage"] for k, v in by_image.items()
               if k not in (images[0].sha256, images[1].sha256))


@pytest.mark.django_db
def test_the_model_evaluation_leaves_out_sample_images_the_model_once_steered() -> None:
    """An image inside the model-independent sample that a lease reached for the model gap (the
    sample's rule changed, or the share was raised later) is not evaluated."""
    from annotation.scoring.selectors import model_summary

    project = make_project(target_ratings=3, priority_weights={"model_independent_share": 0.5})
    raters = [make_user() for _ in range(3)]
    add_member(project, *raters)
    rng = np.random.default_rng(5)
    images = [make_image(project, prompt=f"prompt {k % 10}") for k in range(40)]
    for im in images:
        for r in raters:
            Rating.objects.create(project=project, image=im, rater=r, values=rng.integers(0, 8, N_EMOTIONS).tolist(),
                                  scale_max=7, taxonomy_version=project.taxonomy_version)
    model_scores_push(project, "m", "1", [(im.name, [3.0] * N_EMOTIONS) for im in images])
    inside = [im for im in images if prio.model_independent([im.pk], 0.5, [im.prompt])[0]]
    assert 0 < len(inside) < len(images)
    assert model_summary(project, "m", "1")["evaluated_images"] == len(inside)  # type: ignore[index]
    from django.utils import timezone

    now = timezone.now()
    Assignment.objects.create(project=project, image=inside[0], rater=raters[0], status="expired", claimed_at=now,
                              expires_at=now, allocation_reason="model_gap")
    summary = model_summary(project, "m", "1")
    assert summary is not None and summary["evaluated_images"] == len(inside) - 1
