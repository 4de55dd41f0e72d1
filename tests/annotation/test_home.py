"""The home page: a rater's own work and a lead's project at a glance (#20)."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from accounts.models import Role
from annotation.models import ImageFlag, Membership, Rating
from annotation.rating.claim import assignment_claim
from annotation.rating.submit import rating_submit
from annotation.services.agreement_snapshot import agreement_snapshot_create
from tests.factories import add_member, make_project, make_user
from tests.support.seed import face_images, populate

pytestmark = pytest.mark.django_db


def card(html: str, slug: str) -> str:
    """The home card of one project (cards are siblings in one list)."""
    [one] = [part for part in html.split('<li class="card home-card"')[1:] if part.startswith(f' data-project="{slug}"')]
    return one


def test_a_rater_sees_a_start_button_and_their_own_progress_only(client):
    project = make_project(slug="home-r", target_ratings=3)
    rater, other = make_user(), make_user()
    add_member(project, rater, other)
    for image in face_images(project, 6):  # another rater's work
        Rating.objects.create(project=project, image=image, rater=other, values=[2] * 40, scale_max=7,
                              taxonomy_version="emonet-face-1")
    client.force_login(rater)
    html = card(client.get("/").content.decode(), "home-r")
    assert "Start rating" in html and "You have rated <strong>0</strong> images here" in html
    assert "/projects/home-r/rate/" in html

    assignment = assignment_claim(project=project, rater=rater)
    rated = rating_submit(assignment=assignment, rater=rater, values=[1] * 40)
    Rating.objects.filter(pk=rated.pk).update(active_seconds=150)  # (the submit caps it by the time since the claim)
    assignment_claim(project=project, rater=rater)  # an image waiting where they left off
    html = card(client.get("/").content.decode(), "home-r")
    assert "Continue rating" in html and "You have rated <strong>1</strong> image here; today 1 in about 2 min" in html
    assert "waiting for you where you left off" in html
    assert "Coverage" not in html and "alpha" not in html.lower()  # never the project's or others' figures

    Membership.objects.filter(project=project, user=rater).update(paused_at=timezone.now())
    html = card(client.get("/").content.decode(), "home-r")
    assert "paused your rating" in html and "Start rating" not in html and "Continue rating" not in html


def test_a_rater_in_calibration_is_sent_to_it_then_told_to_wait(client):
    from annotation.models import CalibrationItem, CalibrationRating

    project = make_project(slug="home-c", require_calibration=True)
    rater = make_user()
    add_member(project, rater)
    [image] = populate(project, 1, [make_user()], np.random.default_rng(1), per_image=1)
    item = CalibrationItem.objects.create(project=project, image=image, reference=[0] * 40)
    client.force_login(rater)
    html = card(client.get("/").content.decode(), "home-c")
    assert "Start calibration" in html and "/projects/home-c/calibration/" in html and "Start rating" not in html
    CalibrationRating.objects.create(project=project, item=item, rater=rater, values=[0] * 40)
    html = card(client.get("/").content.decode(), "home-c")
    assert "waiting for your lead to admit you" in html
    Membership.objects.filter(project=project, user=rater).update(admitted_at=timezone.now())
    assert "Start rating" in card(client.get("/").content.decode(), "home-c")


def test_a_lead_sees_coverage_agreement_what_waits_and_links(client, django_assert_max_num_queries):
    project = make_project(slug="home-l", target_ratings=3, alert_min_kappa=0.99)
    lead = make_user(Role.LEAD)
    raters = [make_user() for _ in range(3)]
    add_member(project, lead, *raters)
    images = populate(project, 20, raters, np.random.default_rng(2), per_image=3)
    populate(project, 5, raters[:1], np.random.default_rng(3), start=20, per_image=1)
    client.force_login(lead)
    html = card(client.get("/").content.decode(), "home-l")
    assert "Coverage: <strong>20</strong> of 25 images have 3 ratings (80%) · 65 ratings in all" in html
    assert "No agreement snapshot yet" in html

    snapshot = agreement_snapshot_create(project, n_boot=50)
    ImageFlag.objects.create(project=project, image=images[0], rater=raters[0], reason="artifact")
    html = card(client.get("/").content.decode(), "home-l")
    mean = snapshot.payload["mean_alpha"]
    assert f"mean alpha <strong>{mean:.2f}</strong>" in html and "95% interval" in html and "min ago" in html
    assert "1 image flagged by raters waits for your decision" in html
    assert "mean kappa" in html  # a rater alert (the threshold 0.99 flags everyone)
    for link in ("/projects/home-l/dashboard/", "/projects/home-l/releases/", "/projects/home-l/settings/"):
        assert link in html
    # A few queries per project, whatever its size (stored counts, a snapshot's fields, never its payload).
    with django_assert_max_num_queries(10):
        client.get("/")
    assert Rating.objects.filter(project=project).count() == 65
