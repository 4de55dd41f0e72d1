"""The priority formula (pure) and its effect on the rating queue (real database)."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.base import ContentFile

from annotation.models import AgreementSnapshot, Image, Rating, SnapshotStatus
from annotation.rating import assignment_claim
from annotation.scoring import priority as prio
from annotation.scoring.services import model_scores_push, priority_recompute
from annotation.taxonomy import EMOTIONS, N_EMOTIONS
from tests.factories import add_member, image_bytes, make_image, make_project, make_user

E = N_EMOTIONS


def vec(**values: int) -> list[int]:
    out = [0] * E
    for name, v in values.items():
        out[EMOTIONS.index(name.replace("_", " "))] = v
    return out


def inputs(ids, ratings, **kw):  # type: ignore[no-untyped-def]
    rid = np.array([r[0] for r in ratings], dtype=np.int64)
    vals = np.array([r[1] for r in ratings], dtype=np.int16).reshape(len(ratings), E)
    return prio.PriorityInputs(image_ids=np.array(ids, dtype=np.int64), rating_image_ids=rid, rating_values=vals,
                               scale_max=kw.pop("scale_max", 7), target=kw.pop("target", 4), n_emotions=E, **kw)


def test_disagreement_is_the_spread_over_emotions_in_play():
    terms = prio.compute_priorities(inputs([1, 2, 3], [
        (1, vec(Anger=0)), (1, vec(Anger=7)),          # maximal split on one emotion
        (2, vec(Anger=3)), (2, vec(Anger=3)),          # agreement
        (3, vec(Anger=7)),                             # one rating: disagreement unknown
    ]))
    assert terms.disagreement.tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert terms.n_ratings.tolist() == [2, 2, 1]
    assert terms.missing.tolist() == pytest.approx([0.5, 0.5, 0.75])


def test_reliable_emotions_weigh_more():
    ratings = [(1, vec(Anger=0, Elation=0)), (1, vec(Anger=4, Elation=0)), (1, vec(Anger=0, Elation=7))]
    alpha = np.full(E, np.nan)
    alpha[EMOTIONS.index("Anger")] = 0.8
    alpha[EMOTIONS.index("Elation")] = -0.2  # below the floor 0.1
    terms = prio.compute_priorities(inputs([1], ratings, reliability=alpha))
    s_anger = np.std([0, 4, 0]) / 3.5
    s_elation = np.std([0, 0, 7]) / 3.5
    assert terms.disagreement[0] == pytest.approx((0.8 * s_anger + 0.1 * s_elation) / 0.9)


def test_model_gap_uses_the_expert_median_and_model_signal_only_unrated_images():
    ratings = [(1, vec(Anger=2)), (1, vec(Anger=4)), (1, vec(Anger=6))]  # median 4
    scores = np.zeros((2, E))
    scores[0, EMOTIONS.index("Anger")] = 0.5   # far below the experts
    scores[1, EMOTIONS.index("Elation")] = 7.0  # an unrated, very expressive face
    terms = prio.compute_priorities(inputs([1, 2], ratings, model_image_ids=np.array([1, 2]), model_scores=scores,
                                           neutral_means=np.zeros(E)))
    assert terms.model_gap[0] == pytest.approx(abs(0.5 - 4) / 7)
    assert terms.model_gap[1] == 0.0 and terms.model_signal[0] == 0.0
    assert terms.model_signal[1] == pytest.approx((7.0 / 7 + 0 + 0) / 3)
    # Without neutral means the baseline is the per-emotion median of the model's scores.
    terms = prio.compute_priorities(inputs([1, 2], ratings, model_image_ids=np.array([1, 2]), model_scores=scores))
    assert terms.model_signal[1] == pytest.approx((abs(7.0 - 3.5) / 7 + abs(0 - 0.25) / 7 + 0) / 3)


def test_even_number_of_ratings_takes_the_middle_of_the_two_medians():
    ratings = [(1, vec(Anger=1)), (1, vec(Anger=2)), (1, vec(Anger=6)), (1, vec(Anger=7))]  # median 4
    scores = np.zeros((1, E))
    scores[0, EMOTIONS.index("Anger")] = 4.0
    terms = prio.compute_priorities(inputs([1], ratings, model_image_ids=np.array([1]), model_scores=scores))
    assert terms.model_gap[0] == pytest.approx(0.0)


def test_under_covered_strata_get_a_boost():
    strata = {"gender": np.array(["woman", "woman", "man", "man", ""])}
    ratings = [(1, vec()), (1, vec()), (2, vec()), (2, vec())]  # women: 4 of 8, men: 0 of 8
    terms = prio.compute_priorities(inputs([1, 2, 3, 4, 5], ratings, strata=strata))
    # overall coverage 4/16 = 0.25; men at 0 -> boost 1; women at 0.5 -> none; unknown -> none
    assert terms.quota.tolist() == pytest.approx([0, 0, 1, 1, 0])


def test_weights_are_validated_and_jitter_is_stable():
    assert prio.resolve_weights({"disagreement": 2}).disagreement == 2.0
    with pytest.raises(ValueError, match="unknown priority weight 'disagreemnt'"):
        prio.resolve_weights({"disagreemnt": 1})
    with pytest.raises(ValueError, match="finite number"):
        prio.resolve_weights({"quota": float("inf")})
    j = prio.jitter(np.arange(1, 1000, dtype=np.int64))
    assert ((j >= 0) & (j < 1)).all() and np.unique(j).size == j.size
    assert prio.jitter(np.array([42]))[0] == j[41]


def test_many_images_compute_fast():
    rng = np.random.default_rng(0)
    n = 100_000
    rid = np.repeat(np.arange(1, 30_001), 3)
    vals = rng.integers(0, 8, (rid.size, E)).astype(np.int16) * (rng.random((rid.size, E)) < 0.2)
    scores = rng.random((n, E)) * 7
    ins = prio.PriorityInputs(image_ids=np.arange(1, n + 1), rating_image_ids=rid, rating_values=vals, scale_max=7,
                              target=4, n_emotions=E, reliability=rng.random(E), model_image_ids=np.arange(1, n + 1),
                              model_scores=scores, strata={"gender": rng.choice(["a", "b", "c"], n)})
    import time

    started = time.perf_counter()
    terms = prio.compute_priorities(ins)
    assert time.perf_counter() - started < 5.0
    assert np.isfinite(terms.priority).all()
    for name in prio.TERMS:
        values = getattr(terms, name)
        assert ((values >= 0) & (values <= 1)).all(), name


# --- on the database -----------------------------------------------------------------------


def image_with_file(project, **extra) -> Image:  # type: ignore[no-untyped-def]
    image = make_image(project, **extra)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


def rate(project, image, rater, values):  # type: ignore[no-untyped-def]
    return Rating.objects.create(project=project, image=image, rater=rater, values=values,
                                 scale_max=project.scale_max, taxonomy_version=project.taxonomy_version)


@pytest.mark.django_db
def test_disputed_image_rises_and_the_next_claim_gets_it_first():
    project = make_project(target_ratings=4)
    a, b, c, newcomer = (make_user() for _ in range(4))
    add_member(project, a, b, c, newcomer)
    # Import order (and the initial priorities) put the disputed image last.
    calm = image_with_file(project, priority=3.0)
    fresh = image_with_file(project, priority=2.0)
    disputed = image_with_file(project, priority=1.0)
    for rater, v in ((a, vec(Anger=0, Contempt=1)), (b, vec(Anger=7, Contempt=6))):
        rate(project, disputed, rater, v)
    for rater in (a, b):
        rate(project, calm, rater, vec(Anger=2))
    assert assignment_claim(project=project, rater=c).image_id == calm.pk  # before: import order

    summary = priority_recompute(project)
    assert summary.n_images == 3 and summary.n_changed == 3
    disputed.refresh_from_db()
    calm.refresh_from_db()
    fresh.refresh_from_db()
    assert disputed.priority > fresh.priority and disputed.priority > calm.priority
    claim = assignment_claim(project=project, rater=newcomer)
    assert claim is not None and claim.image_id == disputed.pk
    # Idempotent: unchanged data writes nothing.
    assert priority_recompute(project).n_changed == 0


@pytest.mark.django_db
def test_reliability_comes_from_the_latest_snapshot_and_model_gap_from_pushed_scores():
    # no model-independent sample here: which ids fall into it depends on the order tests run in
    project = make_project(target_ratings=3, priority_weights={"model_independent_share": 0})
    a, b = make_user(), make_user()
    add_member(project, a, b)
    x = image_with_file(project)
    y = image_with_file(project)
    for im in (x, y):
        rate(project, im, a, vec(Anger=3))
        rate(project, im, b, vec(Anger=3))
    scores = [0.0] * E
    model_scores_push(project, "external", "v1", [(x.name, scores), (y.name, [7.0] * E)])
    emotions = [{"index": i, "emotion": n, "alpha": 0.5} for i, n in enumerate(EMOTIONS)]
    AgreementSnapshot.objects.create(project=project, fingerprint="f", status=SnapshotStatus.DONE,
                                     payload={"emotions": emotions})
    summary = priority_recompute(project)
    assert summary.model == ("external", "v1")
    assert summary.terms is not None
    gap = dict(zip(summary.terms.image_ids.tolist(), summary.terms.model_gap.tolist(), strict=True))
    assert gap[y.pk] > gap[x.pk] > 0  # y: the model sees every emotion at 7, the experts only anger at 3
    y.refresh_from_db()
    x.refresh_from_db()
    assert y.priority > x.priority


@pytest.mark.django_db
def test_bad_project_weights_are_refused_before_writing():
    project = make_project(priority_weights={"missing": "lots"})
    im = image_with_file(project, priority=0.5)
    with pytest.raises(ValueError, match="'missing' must be a finite number"):
        priority_recompute(project)
    im.refresh_from_db()
    assert im.priority == 0.5
