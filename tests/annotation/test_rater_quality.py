"""Rater quality: pausing a rater, excluding their ratings from releases (annotation.services.raters)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from accounts.models import Role
from annotation import exporters, selectors
from annotation.models import Assignment, AssignmentStatus, AuditEvent, Image, Membership, Rating
from annotation.services.queue import assignment_claim
from annotation.services.raters import (
    RaterActionError,
    rater_exclude,
    rater_include,
    rater_pause,
    rater_resume,
)
from annotation.services.releases import release_build, release_create, release_dir
from tests.factories import PASSWORD, add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def image_with_file(project, priority: float = 0.0) -> Image:
    image = make_image(project, priority=priority)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


def test_pausing_returns_the_leases_and_the_paused_rater_is_served_nothing():
    project = make_project(target_ratings=1)
    lead, rater, other = make_user(Role.LEAD), make_user(), make_user()
    add_member(project, lead, rater, other)
    only = image_with_file(project)
    lease = assignment_claim(project=project, rater=rater)
    assert lease is not None and lease.image_id == only.pk
    assert assignment_claim(project=project, rater=other) is None  # the one slot is leased

    rater_pause(project=project, rater=rater, actor=lead, reason="rushing")
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.EXPIRED and lease.finished_at is not None
    taken = assignment_claim(project=project, rater=other)
    assert taken is not None and taken.image_id == only.pk  # the image went back to the queue
    image_with_file(project)
    assert assignment_claim(project=project, rater=rater) is None  # paused: nothing, although one is free
    assert not Assignment.objects.filter(rater=rater, status=AssignmentStatus.OPEN).exists()
    event = AuditEvent.objects.get(action="rater.paused")
    assert event.actor == lead and event.data["leases_returned"] == 1 and event.data["reason"] == "rushing"

    rater_pause(project=project, rater=rater, actor=lead)  # idempotent: no second event
    assert AuditEvent.objects.filter(action="rater.paused").count() == 1
    rater_resume(project=project, rater=rater, actor=lead)
    assert AuditEvent.objects.filter(action="rater.resumed").count() == 1
    assert assignment_claim(project=project, rater=rater) is not None


def test_pausing_in_one_project_leaves_the_other_alone():
    p, q = make_project(), make_project()
    lead, rater = make_user(Role.LEAD), make_user()
    add_member(p, lead, rater)
    add_member(q, rater)
    image_with_file(p)
    image_with_file(q)
    rater_pause(project=p, rater=rater, actor=lead)
    assert assignment_claim(project=p, rater=rater) is None
    assert assignment_claim(project=q, rater=rater) is not None


def test_a_paused_rater_is_told_so_and_claims_nothing(client):
    project = make_project()
    lead, rater = make_user(Role.LEAD), make_user()
    add_member(project, lead, rater)
    image_with_file(project)
    rater_pause(project=project, rater=rater, actor=lead)
    client.login(email=rater.email, password=PASSWORD)
    page = client.get(reverse("annotation:rate", args=[project.slug]))
    assert page.status_code == 200
    assert "Your rating in this project is paused" in page.content.decode()
    assert 'data-assignment="' not in page.content.decode()
    assert not Assignment.objects.filter(rater=rater).exists()


def test_actions_need_a_membership_and_exclusion_a_reason():
    project = make_project()
    lead, rater, stranger = make_user(Role.LEAD), make_user(), make_user()
    add_member(project, lead, rater)
    with pytest.raises(RaterActionError, match="not a member"):
        rater_pause(project=project, rater=stranger, actor=lead)
    with pytest.raises(RaterActionError, match="reason is required"):
        rater_exclude(project=project, rater=rater, actor=lead, reason="  ")
    assert not Membership.objects.get(project=project, user=rater).excluded_from_releases
    rater_exclude(project=project, rater=rater, actor=lead, reason="failed the attention checks")
    m = Membership.objects.get(project=project, user=rater)
    assert m.excluded_from_releases and m.exclusion_reason == "failed the attention checks"
    rater_include(project=project, rater=rater, actor=lead)
    m.refresh_from_db()
    assert not m.excluded_from_releases and m.exclusion_reason == ""
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="rater.").order_by("id")] == [
        "rater.excluded", "rater.included"]


def _rated_project(n_images: int = 30):
    project = make_project(slug="rq")
    raters = [make_user() for _ in range(4)]
    add_member(project, *raters)
    rng = np.random.default_rng(5)
    ratings = []
    for i in range(n_images):
        image = Image.objects.create(project=project, name=f"face_{i:03d}.jpg",
                                     sha256=hashlib.sha256(f"rq{i}".encode()).hexdigest())
        for r in raters:
            ratings.append(Rating(project=project, image=image, rater=r,
                                  values=[int(v) for v in rng.integers(0, 8, 40)], scale_max=7,
                                  taxonomy_version="emonet-face-1", source="import"))
    Rating.objects.bulk_create(ratings)
    return project, raters


def test_rating_rows_leaves_excluded_raters_out_in_sql_and_orm(monkeypatch):
    project, raters = _rated_project(6)
    everyone = selectors.rating_rows(project)
    some = selectors.rating_rows(project, exclude_raters=[raters[1].pk])
    assert raters[1].pk in everyone.rater_ids and raters[1].pk not in some.rater_ids
    assert len(some.rater_ids) == len(everyone.rater_ids) - 6
    orm = selectors.rating_rows(project, exclude_raters=[raters[1].pk], as_of=project.created_at.replace(year=2100))
    assert orm.rater_ids.tolist() == some.rater_ids.tolist() and (orm.values == some.values).all()


def test_an_excluded_raters_ratings_are_absent_from_a_new_release_and_listed_in_its_card():
    project, raters = _rated_project()
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    before = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert before.summary["n_raters"] == 4 and before.summary["excluded_raters"] == []
    bad = raters[2]
    rater_exclude(project=project, rater=bad, actor=lead, reason="rated every image identically")
    release = release_build(release_create(project=project, version="1.1.0", n_boot=0))
    key = bytes.fromhex(release.pseudonym_key)
    name = exporters.pseudonym(bad.pk, key)
    assert release.summary["n_raters"] == 3 and release.summary["raw_ratings"] == 30 * 3
    assert release.summary["excluded_raters"] == [{"rater": name, "reason": "rated every image identically"}]
    folder = release_dir(release)
    raw = pq.read_table(folder / "raw" / "ratings.parquet").to_pydict()
    assert name not in set(raw["rater"]) and len(set(raw["rater"])) == 3
    card = (folder / "README.md").read_text()
    assert name in card and "rated every image identically" in card
    meta = json.loads((folder / "release.json").read_text())
    assert json.dumps(meta).count("rated every image identically") >= 1
    assert str(bad.pk) not in json.dumps(release.config["excluded_raters"])  # pseudonyms, never ids
    # The earlier release keeps the rater; the exclusion only applies from its creation on.
    old_raw = pq.read_table(release_dir(before) / "raw" / "ratings.parquet").to_pydict()
    assert exporters.pseudonym(bad.pk, bytes.fromhex(before.pseudonym_key)) in set(old_raw["rater"])


def test_lead_buttons_on_the_raters_page(client):
    project = make_project()
    lead, rater = make_user(Role.LEAD), make_user(display_name="Rita Rater")
    add_member(project, lead, rater)
    client.force_login(lead)
    page = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert "Rita Rater" in page and reverse("annotation:dashboard-rater-pause", args=[project.slug, rater.pk]) in page
    response = client.post(reverse("annotation:dashboard-rater-pause", args=[project.slug, rater.pk]))
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=rater).paused_at is not None
    page = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert "paused since" in page
    assert reverse("annotation:dashboard-rater-resume", args=[project.slug, rater.pk]) in page
    refused = client.post(reverse("annotation:dashboard-rater-exclude", args=[project.slug, rater.pk]), {"reason": ""})
    assert refused.status_code == 400 and "reason is required" in refused.content.decode()
    ok = client.post(reverse("annotation:dashboard-rater-exclude", args=[project.slug, rater.pk]),
                     {"reason": "too fast"})
    assert ok.status_code == 302
    assert Membership.objects.get(project=project, user=rater).exclusion_reason == "too fast"
    assert client.post(reverse("annotation:dashboard-rater-pause", args=[project.slug, lead.pk + 1000])
                       ).status_code == 400
    client.force_login(rater)
    assert client.post(reverse("annotation:dashboard-rater-resume", args=[project.slug, rater.pk])).status_code == 403
    assert Membership.objects.get(project=project, user=rater).paused_at is not None
