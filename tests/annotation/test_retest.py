"""Test-retest: unannounced repeats (Project.retest_share), stored apart, intra-rater reliability."""

from __future__ import annotations

from datetime import timedelta

import krippendorff
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from annotation import rater_quality as rq
from annotation import selectors, taxonomy
from annotation.models import Assignment, Image, Rating, RetestRating
from annotation.rating import assignment_claim, rating_submit, retest_due
from annotation.services.agreement_snapshot import agreement_compute
from annotation.services.releases import release_build, release_create
from tests.factories import PASSWORD, add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def image_with_file(project, priority: float = 0.0) -> Image:
    image = make_image(project, priority=priority)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


def old_ratings(project, rater, n: int, hours: float = 48.0, rng=None) -> list[Rating]:
    """n images with files, each rated by `rater` `hours` ago."""
    rng = rng or np.random.default_rng(0)
    out = []
    for _ in range(n):
        image = image_with_file(project)
        out.append(Rating.objects.create(project=project, image=image, rater=rater, scale_max=7,
                                         values=[int(v) for v in rng.integers(0, 8, 40)],
                                         taxonomy_version="emonet-face-1"))
    Rating.objects.filter(pk__in=[r.pk for r in out]).update(created_at=timezone.now() - timedelta(hours=hours))
    return out


def test_retest_due_is_reproducible_and_near_the_share():
    draws = [retest_due(project_id=1, rater_id=r, n_claims=n, share=0.05) for r in range(20) for n in range(1000)]
    assert draws == [retest_due(project_id=1, rater_id=r, n_claims=n, share=0.05) for r in range(20) for n in range(1000)]
    assert abs(sum(draws) / len(draws) - 0.05) < 0.006  # 20,000 draws: sd 0.0015
    assert not any(retest_due(project_id=1, rater_id=1, n_claims=n, share=0.0) for n in range(1000))


def test_repeats_are_served_at_the_configured_rate_only_of_the_raters_own_old_ratings():
    project = make_project(target_ratings=1, retest_share=0.2, retest_min_hours=24)
    rater, newcomer = make_user(), make_user()
    add_member(project, rater, newcomer)
    originals = {r.image_id: r for r in old_ratings(project, rater, 120)}
    for _ in range(300):
        image_with_file(project)
    n_claims, repeats = 240, 0
    for _ in range(n_claims):
        a = assignment_claim(project=project, rater=rater)
        assert a is not None
        if a.is_retest:
            repeats += 1
            assert a.image_id in originals  # only images this rater rated, at least 24 h ago
        rating_submit(assignment=a, rater=rater, values=[1] * 40)
    # Binomial(240, 0.2): sd ~ 6.2 repeats; allow 3 sd.
    assert abs(repeats - 0.2 * n_claims) <= 19, repeats
    stored = list(RetestRating.objects.filter(rater=rater))
    assert len(stored) == repeats and len({s.image_id for s in stored}) == repeats  # each image repeated once
    for s in stored:
        assert s.original == originals[s.image_id] and s.original_values == originals[s.image_id].values
        assert s.values == [1] * 40
    # The rater's new ratings are fresh (< 24 h): none of them was repeated.
    assert not RetestRating.objects.exclude(image_id__in=list(originals)).exists()
    # Counted once: the repeats are not ratings.
    assert Rating.objects.filter(rater=rater).count() == 120 + n_claims - repeats
    # A rater with no earlier ratings is never served a repeat.
    for _ in range(40):
        a = assignment_claim(project=project, rater=newcomer)
        assert a is not None and not a.is_retest
        rating_submit(assignment=a, rater=newcomer, values=[0] * 40)


def test_recent_ratings_and_binary_projects_are_not_repeated():
    project = make_project(target_ratings=1, retest_share=0.5, retest_min_hours=24)
    rater = make_user()
    add_member(project, rater)
    old_ratings(project, rater, 10, hours=2)  # too recent
    for _ in range(30):
        image_with_file(project)
    for _ in range(20):
        a = assignment_claim(project=project, rater=rater)
        assert a is not None and not a.is_retest
        rating_submit(assignment=a, rater=rater, values=[0] * 40)


def test_repeats_stay_out_of_rating_rows_agreement_and_releases_and_look_like_new_work(client):
    project = make_project(slug="rt", target_ratings=3, retest_share=0.5, retest_min_hours=1)
    raters = [make_user() for _ in range(3)]
    add_member(project, *raters)
    rng = np.random.default_rng(2)
    images = [image_with_file(project) for _ in range(12)]
    for image in images:
        for r in raters:
            Rating.objects.create(project=project, image=image, rater=r, scale_max=7, taxonomy_version="emonet-face-1",
                                  values=[int(v) for v in rng.integers(0, 8, 40)])
    Rating.objects.filter(project=project).update(created_at=timezone.now() - timedelta(hours=5))
    for _ in range(20):
        image_with_file(project)  # new work
    rater = raters[0]
    client.login(email=rater.email, password=PASSWORD)
    retest = None
    for _ in range(20):  # claims until one is a repeat (share 0.5)
        page = client.get(reverse("annotation:rate", args=[project.slug]))
        a = Assignment.objects.get(rater=rater, status="open")
        html = page.content.decode()
        assert "retest" not in html.lower() and "repeat" not in html.lower()
        mine = Rating.objects.filter(rater=rater).count()
        assert f"You have rated <strong>{mine}</strong>" in html
        if a.is_retest:
            retest = a
            break
        rating_submit(assignment=a, rater=rater, values=[0] * 40)
    assert retest is not None
    response = client.post(reverse("annotation:rate-submit", args=[project.slug, retest.pk]),
                           {f"emo:{name}": "3" for name in taxonomy.EMOTIONS})
    assert response.status_code == 302
    assert RetestRating.objects.filter(rater=rater).count() == 1
    n_ratings = Rating.objects.filter(project=project).count()
    # The rater's own count moves on a repeat too (it must not give the repeat away).
    assert f"You have rated <strong>{mine + 1}</strong>" in client.get(
        reverse("annotation:rate", args=[project.slug])).content.decode()
    rows = selectors.rating_rows(project)
    assert len(rows.rater_ids) == n_ratings
    assert len(set(zip(rows.image_ids.tolist(), rows.rater_ids.tolist(), strict=True))) == n_ratings
    payload = agreement_compute(project, n_boot=0)
    assert payload["n_ratings"] == n_ratings
    by_rater = {r["rater"]: r for r in payload["raters"]}
    assert by_rater[rater.pk]["retest"]["n_pairs"] == 1 and by_rater[raters[1].pk]["retest"] is None
    assert by_rater[rater.pk]["n_ratings"] == Rating.objects.filter(rater=rater).count()
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert release.summary["raw_ratings"] == n_ratings


def test_intra_rater_alpha_matches_a_hand_computed_value():
    # One emotion, four images rated twice: (1,1) (2,2) (3,4) (4,3).
    # D_o = (1/8) * sum_u 2 (a-b)^2 = 4/8 = 0.5. Pooled values {1,1,2,2,3,3,4,4}:
    # sum_{i<j} (vi-vj)^2 = 8*60 - 20^2 = 80, so D_e = 2*80 / (8*7) = 20/7. alpha = 1 - 0.5*7/20 = 0.825.
    first = [[1], [2], [3], [4]]
    second = [[1], [2], [4], [3]]
    [result] = rq.retest_reliability(first, second, scale_max=7)
    assert result.alpha == pytest.approx(0.825) and result.n_pairs == 4
    assert result.mean_abs_change == pytest.approx(0.5)
    oracle = krippendorff.alpha(reliability_data=np.array([[1, 2, 3, 4], [1, 2, 4, 3]], dtype=float),
                                level_of_measurement="interval")
    assert result.alpha == pytest.approx(oracle)
    # No variation at all: undefined, with a reason; no pairs: undefined.
    [flat] = rq.retest_reliability([[0], [0]], [[0], [0]], scale_max=7)
    assert flat.alpha is None and flat.reason and flat.mean_abs_change == 0.0
    assert rq.retest_reliability(np.zeros((0, 2)), np.zeros((0, 2)), scale_max=7)[1].n_pairs == 0


def test_the_snapshot_and_the_raters_page_show_the_hand_computed_retest_alpha(client):
    from accounts.models import Role
    from annotation.services.agreement_snapshot import agreement_snapshot_create

    project = make_project()
    lead, rater, other = make_user(Role.LEAD), make_user(display_name="Rita"), make_user()
    add_member(project, lead, rater, other)
    pairs = [(1, 1), (2, 2), (3, 4), (4, 3)]
    for a_value, b_value in pairs:
        image = make_image(project)
        first = [a_value] + [0] * 39
        original = Rating.objects.create(project=project, image=image, rater=rater, values=first, scale_max=7,
                                         taxonomy_version="emonet-face-1")
        Rating.objects.create(project=project, image=image, rater=other, values=first, scale_max=7,
                              taxonomy_version="emonet-face-1")
        lease = Assignment.objects.create(project=project, image=image, rater=rater, status="submitted",
                                          is_retest=True, claimed_at=timezone.now(), expires_at=timezone.now())
        RetestRating.objects.create(project=project, image=image, rater=rater, original=original, assignment=lease,
                                    values=[b_value] + [0] * 39, original_values=first, scale_max=7)
    snapshot = agreement_snapshot_create(project, n_boot=0)
    row = next(r for r in snapshot.payload["raters"] if r["rater"] == rater.pk)
    assert row["retest"]["n_pairs"] == 4
    assert row["retest"]["emotions"][0]["alpha"] == pytest.approx(0.825)
    assert row["retest"]["emotions"][0]["mean_abs_change"] == pytest.approx(0.5)
    assert row["retest"]["mean_alpha"] == pytest.approx(0.825)  # the other emotions never vary: undefined
    client.force_login(lead)
    html = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert "Retest alpha" in html and "0.825" in html
    csv_text = client.get(reverse("annotation:dashboard-raters", args=[project.slug]) + "?format=csv&table=retest"
                          ).content.decode()
    assert "0.825" in csv_text
