"""Calibration admission that leaving every slider at 0 cannot pass (issue #17): the pure scoring
by simulation with known truth, and the service on the database."""

from __future__ import annotations

import numpy as np
import pytest

from accounts.models import Role
from annotation import taxonomy
from annotation.calibration_scoring import calibration_score, calibration_verdict
from annotation.models import CalibrationRating, Rating
from annotation.services import calibration as cal
from tests.factories import add_member, make_image, make_project, make_user

N = taxonomy.N_EMOTIONS


def _rate(rng: np.random.Generator, z: np.ndarray, sd: float) -> np.ndarray:
    y = z + sd * rng.standard_normal(z.shape)
    return np.where(y < 0.5, 0.0, np.clip(np.rint(y), 1, 7))


def _median_ref(panel: list[np.ndarray]) -> np.ndarray:
    return np.floor(np.median(np.stack(panel), axis=0) + 0.5)


def test_an_all_zero_rater_never_passes_and_a_genuine_expert_does() -> None:
    # 10-image calibration sets, EmoNet-like (about 8 of 40 emotions present), reference = the
    # median of 4 experts, the bar from those experts' own scores against the other three.
    rng = np.random.default_rng(0)
    passed = {"genuine": 0, "zero": 0, "one emotion": 0}
    n_rep = 150
    for _ in range(n_rep):
        z = rng.normal(-1.5, 2.0, (10, 40))
        panel = [_rate(rng, z, 1.5) for _ in range(4)]
        ref = _median_ref(panel)
        experts = [calibration_score(panel[k], _median_ref([p for j, p in enumerate(panel) if j != k]))
                   for k in range(4)]
        genuine = _rate(rng, z, 1.5)
        one = np.zeros_like(genuine)
        one[np.arange(10), genuine.argmax(axis=1)] = genuine.max(axis=1)  # only the most obvious emotion
        for name, values in (("genuine", genuine), ("zero", np.zeros_like(genuine)), ("one emotion", one)):
            passed[name] += calibration_verdict(calibration_score(values, ref), experts).passed is True
    assert passed["zero"] == 0 and passed["one emotion"] <= 0.05 * n_rep
    assert passed["genuine"] >= 0.85 * n_rep  # a one-sided 95% prediction bound on each of two scores


def test_calibration_score_by_hand_and_the_bar_follows_the_experts() -> None:
    ref = np.array([[3, 0, 2, 0], [0, 0, 5, 1]])
    x = np.array([[4, 1, 0, 0], [0, 0, 5, 0]])
    s = calibration_score(x, ref)
    # present: rater {(0,0), (0,1), (1,2)}, reference {(0,0), (0,2), (1,2), (1,3)}; both {(0,0), (1,2)}
    assert s.presence_agreement == pytest.approx(2 * 2 / (3 + 4))
    assert s.sensitivity == pytest.approx(2 / 4) and s.specificity == pytest.approx(3 / 4)
    assert s.intensity_diff == pytest.approx((1 + 0) / 2) and s.n_copresent == 2
    assert calibration_verdict(s).passed is True
    zero = calibration_score(np.zeros_like(ref), ref)
    assert zero.presence_agreement == 0 and calibration_verdict(zero).passed is False
    # the bar follows the experts: a t prediction bound from their own scores, never below the floor
    experts = [calibration_score(np.array(e), ref) for e in ([[3, 0, 2, 1], [0, 0, 5, 1]], [[2, 0, 0, 0], [0, 1, 4, 0]],
                                                             [[3, 1, 2, 0], [0, 0, 0, 2]])]
    pres = np.array([e.presence_agreement for e in experts])
    from scipy import stats
    bound = pres.mean() - stats.t.ppf(0.95, 2) * pres.std(ddof=1) * np.sqrt(1 + 1 / 3)
    verdict = calibration_verdict(zero, experts)
    assert verdict.min_presence == pytest.approx(max(0.1, bound)) and verdict.passed is False
    assert "3 experts" in verdict.reason
    assert "fixed bar" in calibration_verdict(zero).reason


@pytest.mark.django_db
def test_the_lead_sees_that_an_all_zero_rater_is_below_the_bar(client):
    rng = np.random.default_rng(2)
    project = make_project(require_calibration=True)
    lead = make_user(Role.LEAD)
    experts = [make_user() for _ in range(4)]
    add_member(project, lead, *experts)
    items = []
    for _ in range(6):
        image = make_image(project)
        z = rng.normal(-1.5, 2.0, N)
        votes = [_rate(rng, z, 1.2).astype(int).tolist() for _ in experts]
        for expert, v in zip(experts, votes, strict=True):
            Rating.objects.create(project=project, image=image, rater=expert, values=v, scale_max=7,
                                  taxonomy_version=project.taxonomy_version)
        items.append(cal.calibration_item_from_ratings(project=project, image=image, actor=lead))
    zero_rater, good_rater = make_user(display_name="Zero"), make_user(display_name="Good")
    add_member(project, zero_rater, good_rater)
    for item in items:
        CalibrationRating.objects.create(project=project, item=item, rater=zero_rater, values=[0] * N)
        CalibrationRating.objects.create(project=project, item=item, rater=good_rater, values=list(item.reference))
    assessed = cal.calibration_assessment(project)
    assert assessed[zero_rater.pk]["passed"] is False and assessed[zero_rater.pk]["presence_agreement"] == 0
    assert assessed[good_rater.pk]["passed"] is True
    client.force_login(lead)
    from django.urls import reverse

    html = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert "below it" in html and "clears it" in html
