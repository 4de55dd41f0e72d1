"""Finding 5 of #16: one rater's flag removes nothing by itself. It takes the image out of that
rater's queue and into the lead's review; the image leaves agreement and releases only when a lead
confirms; a release freezes the set left out with its inputs."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from accounts.models import Role
from annotation import selectors
from annotation.models import AuditEvent, Image, ImageFlag, Rating
from annotation.rating import assignment_claim, assignment_flag, rating_submit
from annotation.services import adjudication
from annotation.services.releases import release_build, release_create
from tests.factories import add_member, make_project, make_user
from tests.support.seed import image_with_file

pytestmark = pytest.mark.django_db
ZEROS = [0] * 40


def _rated_project(n: int = 12):
    project = make_project(slug="flags", target_ratings=4)
    raters = [make_user() for _ in range(4)]
    lead = make_user(Role.LEAD)
    add_member(project, lead, *raters)
    rng = np.random.default_rng(3)
    images = [image_with_file(project, priority=float(n - i)) for i in range(n)]
    for image in images:
        for rater in rng.choice(raters, size=3, replace=False):
            Rating.objects.create(project=project, image=image, rater=rater, scale_max=7,
                                  taxonomy_version="emonet-face-1", values=[int(v) for v in rng.integers(0, 8, 40)])
    return project, raters, lead, images


def _flag(project, rater, image):
    """The rater is served `image` (given the top priority) and flags it."""
    Image.objects.filter(pk=image.pk).update(priority=1000.0 + image.pk)
    a = assignment_claim(project=project, rater=rater)
    assert a.image_id == image.pk
    return assignment_flag(assignment=a, rater=rater, reason="artifact", note="six fingers")


def _in_agreement(project, image) -> bool:
    return image.pk in set(selectors.rating_rows(project).image_ids.tolist())


def test_one_raters_flag_leaves_the_image_in_agreement_releases_and_other_queues():
    project = make_project(target_ratings=3)
    image, other_image = image_with_file(project, priority=2.0), image_with_file(project, priority=1.0)
    flagger, other = make_user(), make_user()
    add_member(project, flagger, other)
    flag = _flag(project, flagger, image)
    image.refresh_from_db()
    assert not image.flagged and flag.resolved_at is None and flag.resolution == ""
    # out of the flagging rater's queue only
    assert assignment_claim(project=project, rater=flagger).image_id == other_image.pk
    a = assignment_claim(project=project, rater=other)
    assert a.image_id == image.pk
    rating_submit(assignment=a, rater=other, values=ZEROS)
    assert _in_agreement(project, image)


def test_agreement_and_releases_keep_the_image_until_a_lead_confirms():
    project, raters, lead, images = _rated_project()
    image = images[0]
    flagger = make_user()
    add_member(project, flagger)
    flag = _flag(project, flagger, image)
    assert _in_agreement(project, image)
    pending = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert pending.summary["images"] == len(images) and pending.inputs["flagged_image_ids"] == []
    # the lead confirms: now the image is out of agreement, new releases and everyone's queue
    adjudication.flag_decide(project=project, flag_id=flag.pk, decision="confirm", actor=lead)
    flag.refresh_from_db()
    image.refresh_from_db()
    assert image.flagged and flag.resolution == "confirmed" and flag.resolved_by == lead
    assert not _in_agreement(project, image)
    confirmed = release_build(release_create(project=project, version="1.1.0", n_boot=0))
    assert confirmed.inputs["flagged_image_ids"] == [image.pk]
    assert confirmed.summary["images"] == len(images) - 1


def test_a_dismissed_flag_keeps_the_image():
    project, raters, lead, images = _rated_project()
    flagger = make_user()
    add_member(project, flagger)
    flag = _flag(project, flagger, images[0])
    adjudication.flag_decide(project=project, flag_id=flag.pk, decision="dismiss", actor=lead, note="fine")
    flag.refresh_from_db()
    images[0].refresh_from_db()
    assert flag.resolution == "dismissed" and flag.resolved_at is not None and not images[0].flagged
    assert _in_agreement(project, images[0])
    assert AuditEvent.objects.filter(action="image.flag_dismissed", actor=lead).count() == 1
    # a dismissed flag cannot then be confirmed by accident (the lead flags the image instead)
    with pytest.raises(adjudication.AdjudicationError, match="already dismissed"):
        adjudication.flag_decide(project=project, flag_id=flag.pk, decision="confirm", actor=lead)


def test_the_flagged_set_is_frozen_with_the_release_inputs():
    project, raters, lead, images = _rated_project()
    flagger = make_user()
    add_member(project, flagger)
    release = release_create(project=project, version="1.0.0", n_boot=0)
    flag = _flag(project, flagger, images[0])
    adjudication.flag_decide(project=project, flag_id=flag.pk, decision="confirm", actor=lead)
    # confirmed after the release was created: the release (and any rebuild) still has the image
    built = release_build(release)
    assert built.summary["images"] == len(images)
    assert built.inputs["flagged_image_ids"] == []


def test_the_lead_confirms_and_dismisses_from_the_review_page_and_the_api(client):
    project, raters, lead, images = _rated_project()
    flaggers = [make_user() for _ in range(2)]
    add_member(project, *flaggers)
    first = _flag(project, flaggers[0], images[0])
    second = _flag(project, flaggers[1], images[1])
    client.force_login(lead)
    page = client.get(reverse("annotation:dashboard-disputed", args=[project.slug])).content.decode()
    assert "Flags waiting for you" in page
    assert reverse("annotation:dashboard-flag-confirm", args=[project.slug, first.pk]) in page
    detail = client.get(reverse("annotation:dashboard-disputed-detail", args=[project.slug, images[0].pk]))
    assert reverse("annotation:dashboard-flag-dismiss", args=[project.slug, first.pk]) in detail.content.decode()
    resp = client.post(reverse("annotation:dashboard-flag-confirm", args=[project.slug, first.pk]))
    assert resp.status_code == 302
    assert Image.objects.get(pk=images[0].pk).flagged
    # the API: the open flags, then a decision
    listed = client.get(reverse("api:flag-list", args=[project.slug]))
    assert [f["id"] for f in listed.json()] == [second.pk]
    bad = client.post(reverse("api:flag-decide", args=[project.slug, second.pk]), {"decision": "delete"},
                      content_type="application/json")
    assert bad.status_code == 400
    ok = client.post(reverse("api:flag-decide", args=[project.slug, second.pk]), {"decision": "dismiss"},
                     content_type="application/json")
    assert ok.status_code == 200 and ok.json()["resolution"] == "dismissed"
    assert not Image.objects.get(pk=images[1].pk).flagged
    assert client.get(reverse("api:flag-list", args=[project.slug])).json() == []
    # a flag of another project is not found
    elsewhere = make_project(slug="elsewhere")
    assert client.post(reverse("api:flag-decide", args=[elsewhere.slug, second.pk]), {"decision": "dismiss"},
                       content_type="application/json").status_code in (403, 404)
    assert Rating.objects.filter(project=project).count() == len(images) * 3  # no rating ever removed


def test_the_migration_brings_back_images_that_only_raters_flagged():
    import importlib

    from django.apps import apps

    migration = importlib.import_module("annotation.migrations.0019_image_flag_resolution")
    project = make_project(slug="mig")
    rater = make_user()
    add_member(project, rater)
    by_rater, by_lead, by_admin = (image_with_file(project) for _ in range(3))
    for image in (by_rater, by_lead):
        ImageFlag.objects.create(project=project, image=image, rater=rater, reason="artifact")
    Image.objects.filter(pk__in=[by_rater.pk, by_lead.pk, by_admin.pk]).update(flagged=True)
    Image.objects.filter(pk=by_lead.pk).update(adjudication="flagged")
    migration.forward(apps, None)
    flagged = dict(Image.objects.filter(project=project).values_list("pk", "flagged"))
    assert flagged == {by_rater.pk: False, by_lead.pk: True, by_admin.pk: True}
