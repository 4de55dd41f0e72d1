"""Finding 3 of #16: a rater is never served for the benchmark (nor as a test-retest repeat) an
image whose reference values they were shown in calibration; other raters still get it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from annotation import taxonomy
from annotation.models import Assignment, Membership, Rating
from annotation.rating import assignment_claim, assignment_skip
from annotation.rating import claim as queue
from annotation.services import calibration as cal
from tests.factories import add_member, make_user, submit_as
from tests.support.seed import image_with_file

pytestmark = pytest.mark.django_db
N = taxonomy.N_EMOTIONS


def _setup(n_others: int = 2):
    from accounts.models import Role
    from tests.factories import make_project

    project = make_project(require_calibration=True, target_ratings=3)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    top = image_with_file(project, priority=10.0)  # first in the queue, and the calibration image
    others = [image_with_file(project, priority=5.0 - i) for i in range(n_others)]
    item = cal.calibration_item_set(project=project, image=top, values=[3] * N, actor=lead)
    return project, lead, top, others, item


def _calibrated_rater(project, lead, item):
    rater = make_user()
    add_member(project, rater)
    cal.calibration_submit(project=project, rater=rater, item=item, values=[1] * N)
    cal.rater_admit(project=project, rater=rater, actor=lead)
    return rater


def _served(project, rater) -> list[int]:
    served = []
    while (a := assignment_claim(project=project, rater=rater)) is not None:
        served.append(a.image_id)
        assignment_skip(assignment=a, rater=rater, reason="other")
    return served


@pytest.mark.parametrize("fast", [False, True], ids=["careful", "fast"])
def test_an_image_shown_in_calibration_is_never_claimed_by_that_rater(fast, monkeypatch):
    monkeypatch.setattr(queue, "_FAST_CLAIM", fast)
    project, lead, top, others, item = _setup()
    rater = _calibrated_rater(project, lead, item)
    assert top.pk not in _served(project, rater)
    # a rater who never saw that reference still gets the image first
    fresh = make_user()
    add_member(project, fresh)
    Membership.objects.filter(project=project, user=fresh).update(admitted_at=top.created_at)
    assert assignment_claim(project=project, rater=fresh).image_id == top.pk


def test_the_rate_page_never_shows_the_calibration_image(client):
    project, lead, top, others, item = _setup()
    rater = _calibrated_rater(project, lead, item)
    client.force_login(rater)
    resp = client.get(reverse("annotation:rate", args=[project.slug]))
    assert resp.status_code == 200
    a = Assignment.objects.get(rater=rater, status="open")
    assert a.image_id == others[0].pk


def test_no_test_retest_repeat_of_an_image_shown_in_calibration():
    """A rater who rated the image for the benchmark before it became a calibration item and then
    saw its reference is not given it again as a repeat."""
    project, lead, top, others, item = _setup(n_others=12)
    project.retest_share, project.retest_min_hours = 0.5, 0
    project.require_calibration = False
    project.save()
    rater = make_user()
    add_member(project, rater)
    a = assignment_claim(project=project, rater=rater)
    assert a.image_id == top.pk
    submit_as(False, assignment=a, rater=rater, values=[0] * N)
    Rating.objects.filter(rater=rater).update(created_at=a.claimed_at - timedelta(days=1))
    cal.calibration_submit(project=project, rater=rater, item=item, values=[1] * N)
    served = _served(project, rater)
    assert sorted(served) == sorted(o.pk for o in others)  # every other image once, no repeat of `top`
    assert not Assignment.objects.filter(rater=rater, is_retest=True).exists()


def test_a_rating_is_not_revised_after_its_reference_was_shown(client):
    """Calibration switched on after the rater rated an image that then became a calibration item:
    once they have seen its reference, their benchmark rating of it stays as it was given."""
    project, lead, top, others, item = _setup()
    project.require_calibration = False
    project.save()
    rater = make_user()
    add_member(project, rater)
    a = assignment_claim(project=project, rater=rater)
    assert a.image_id == top.pk
    rating = submit_as(False, assignment=a, rater=rater, values=[0] * N)
    url = reverse("annotation:rate-revise", args=[project.slug, rating.pk])
    client.force_login(rater)
    ok = client.post(url, {f"emo:{n}": "1" for n in taxonomy.EMOTIONS})
    assert ok.status_code == 302 and Rating.objects.get(pk=rating.pk).values == [1] * N  # before: allowed
    cal.calibration_submit(project=project, rater=rater, item=item, values=[1] * N)
    refused = client.post(url, {f"emo:{n}": "3" for n in taxonomy.EMOTIONS})
    assert refused.status_code == 409 and "reference values" in refused.content.decode()
    assert Rating.objects.get(pk=rating.pk).values == [1] * N
