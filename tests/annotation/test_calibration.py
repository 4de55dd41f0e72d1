"""Onboarding with a calibration set (annotation.services.calibration, views.rate.calibration_page)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from accounts.models import Role
from annotation import selectors, taxonomy
from annotation.models import AuditEvent, CalibrationItem, CalibrationRating, Image, Membership, Rating
from annotation.rating import InvalidValues
from annotation.services import calibration as cal
from annotation.services.releases import release_build, release_create
from tests.factories import add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db
N = taxonomy.N_EMOTIONS


def image_with_file(project, priority: float = 0.0) -> Image:
    image = make_image(project, priority=priority)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


def calibration_project(n_items: int = 2, **extra):
    project = make_project(require_calibration=True, **extra)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    items = [cal.calibration_item_set(project=project, image=image_with_file(project), values=[i + 1] * N, actor=lead)
             for i in range(n_items)]
    return project, lead, items


def test_the_comparison_is_right_on_a_hand_made_case():
    project, lead, _ = calibration_project(0)
    a, b = image_with_file(project), image_with_file(project)
    ref_a = [0] * N
    ref_a[0], ref_a[1] = 4, 2
    ref_b = [1] * N
    item_a = cal.calibration_item_set(project=project, image=a, values=ref_a, actor=lead)
    item_b = cal.calibration_item_set(project=project, image=b, values=ref_b, actor=lead)
    rater = make_user()
    add_member(project, rater)
    mine_a = [0] * N
    mine_a[0], mine_a[1] = 1, 2  # |1-4| = 3, |2-2| = 0, others 0
    mine_b = [1] * N
    mine_b[0] = 3  # |3-1| = 2, others 0
    cal.calibration_submit(project=project, rater=rater, item=item_a, values=mine_a, seconds=12.5)
    c = cal.calibration_comparison(project, rater)
    assert not c.complete and c.n_items == 2
    cal.calibration_submit(project=project, rater=rater, item=item_b, values=mine_b)
    c = cal.calibration_comparison(project, rater)
    assert c.complete
    assert [x.item for x in c.items] == [item_a.pk, item_b.pk]
    assert c.items[0].abs_diff[:3] == [3, 0, 0] and c.items[1].abs_diff[:2] == [2, 0]
    assert c.per_emotion[0] == pytest.approx(2.5)  # (3 + 2) / 2
    assert c.per_emotion[1] == 0 and c.per_emotion[N - 1] == 0
    assert c.mean_abs_diff == pytest.approx(5 / (2 * N))
    assert cal.calibration_summaries(project)[rater.pk] == (2, pytest.approx(5 / (2 * N)))
    # Another rater's calibration does not change this rater's comparison.
    other = make_user()
    add_member(project, other)
    cal.calibration_submit(project=project, rater=other, item=item_a, values=[7] * N)
    assert cal.calibration_comparison(project, rater).mean_abs_diff == pytest.approx(5 / (2 * N))


def test_next_submit_is_idempotent_and_values_are_validated():
    project, lead, items = calibration_project(2)
    rater = make_user()
    add_member(project, rater)
    assert cal.calibration_next(project, rater) == items[0]
    with pytest.raises(InvalidValues):
        cal.calibration_submit(project=project, rater=rater, item=items[0], values=[9] * N)
    first = cal.calibration_submit(project=project, rater=rater, item=items[0], values=[1] * N)
    again = cal.calibration_submit(project=project, rater=rater, item=items[0], values=[2] * N)
    assert again.pk == first.pk and again.values == [1] * N
    assert cal.calibration_next(project, rater) == items[1]
    with pytest.raises(cal.CalibrationError):
        cal.calibration_item_set(project=project, image=make_image(make_project()), values=[0] * N, actor=lead)


def test_median_reference_from_the_expert_ratings():
    project, lead, _ = calibration_project(0)
    image = image_with_file(project)
    for v in ([1] * N, [2] * N, [6] * N, [3] * N):
        rater = make_user()
        add_member(project, rater)
        Rating.objects.create(project=project, image=image, rater=rater, values=v, scale_max=7,
                              taxonomy_version="emonet-face-1")
    item = cal.calibration_item_from_ratings(project=project, image=image, actor=lead)
    assert item.reference == [3] * N  # median of 1, 2, 3, 6 = 2.5, rounded half up
    with pytest.raises(cal.CalibrationError):
        cal.calibration_item_from_ratings(project=project, image=image_with_file(project), actor=lead)


def test_calibration_ratings_stay_out_of_agreement_and_releases():
    project, lead, items = calibration_project(2, target_ratings=2)
    experts = [make_user() for _ in range(2)]
    add_member(project, *experts)
    for e in experts:
        Membership.objects.filter(project=project, user=e).update(admitted_at=lead.date_joined)
        for item in items:
            Rating.objects.create(project=project, image=item.image, rater=e, values=[2] * N, scale_max=7,
                                  taxonomy_version="emonet-face-1")
    newbie = make_user()
    add_member(project, newbie)
    for item in items:
        cal.calibration_submit(project=project, rater=newbie, item=item, values=[5] * N)
    assert CalibrationRating.objects.filter(rater=newbie).count() == 2
    rows = selectors.rating_rows(project)
    assert len(rows.rater_ids) == 4 and newbie.pk not in rows.rater_ids.tolist()
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert release.summary["raw_ratings"] == 4
    assert not Rating.objects.filter(rater=newbie).exists()


def test_a_new_rater_is_sent_to_calibration_until_a_lead_admits_them(client):
    project, lead, items = calibration_project(2)
    image_with_file(project)  # something to rate for the benchmark
    rater = make_user()
    add_member(project, rater)
    assert cal.needs_calibration(project, rater)
    client.force_login(rater)
    rate_url = reverse("annotation:rate", args=[project.slug])
    cal_url = reverse("annotation:calibration", args=[project.slug])
    response = client.get(rate_url)
    assert response.status_code == 302 and response["Location"] == cal_url
    for name in ("annotation:rate-submit", "annotation:rate-skip", "annotation:rate-flag"):
        r = client.post(reverse(name, args=[project.slug, 1]), {})
        assert r.status_code == 302 and r["Location"] == cal_url
        r = client.post(reverse(name, args=[project.slug, 1]), {}, HTTP_HX_REQUEST="true")
        assert r["HX-Redirect"] == cal_url
    page = client.get(cal_url).content.decode()
    assert 'id="calibration-stage"' in page and f'value="{items[0].pk}"' in page
    bad = client.post(cal_url, {"item": items[0].pk, "emo:Joy": "3"})
    assert bad.status_code == 400 and not CalibrationRating.objects.exists()
    for item in items:
        values = {f"emo:{name}": "0" for name in taxonomy.EMOTIONS}
        values[f"emo:{taxonomy.EMOTIONS[0]}"] = "4"
        response = client.post(cal_url, {"item": item.pk, "active_seconds": "8.5", **values})
        assert response.status_code == 302
    assert CalibrationRating.objects.filter(rater=rater).count() == 2
    page = client.get(cal_url).content.decode()
    assert "Waiting for your lead to admit you" in page and 'id="calibration-comparison"' in page
    assert 'id="calibration-stage"' not in page
    assert client.get(rate_url).status_code == 302  # still waiting
    # The lead sees the rater with their figure and admits them.
    client.force_login(lead)
    raters_page = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert 'id="rater-admission"' in raters_page and "2 of 2" in raters_page
    response = client.post(reverse("annotation:dashboard-rater-admit", args=[project.slug, rater.pk]))
    assert response.status_code == 302
    m = Membership.objects.get(project=project, user=rater)
    assert m.admitted_at is not None and m.admitted_by == lead
    assert AuditEvent.objects.filter(action="rater.admitted", project=project).count() == 1
    client.post(reverse("annotation:dashboard-rater-admit", args=[project.slug, rater.pk]))  # idempotent
    assert AuditEvent.objects.filter(action="rater.admitted", project=project).count() == 1
    assert 'id="rater-admission"' not in client.get(
        reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    client.force_login(rater)
    response = client.get(rate_url)
    assert response.status_code == 200 and 'id="rate-stage"' in response.content.decode()
    assert not cal.needs_calibration(project, rater)


def test_projects_without_calibration_and_the_lead_median_button(client):
    project = make_project()
    rater, lead = make_user(), make_user(Role.LEAD)
    add_member(project, rater, lead)
    image = image_with_file(project)
    client.force_login(rater)
    assert client.get(reverse("annotation:calibration", args=[project.slug]))["Location"] == reverse(
        "annotation:rate", args=[project.slug])
    assert not cal.needs_calibration(project, rater)
    Rating.objects.create(project=project, image=image, rater=rater, values=[4] * N, scale_max=7,
                          taxonomy_version="emonet-face-1")
    client.force_login(lead)
    url = reverse("annotation:dashboard-calibration-item", args=[project.slug, image.pk])
    assert client.post(url).status_code == 302
    assert CalibrationItem.objects.get(project=project, image=image).reference == [4] * N
    detail = client.get(reverse("annotation:dashboard-disputed-detail", args=[project.slug, image.pk]))
    assert "Update the calibration reference" in detail.content.decode()
    empty = image_with_file(project)
    assert client.post(reverse("annotation:dashboard-calibration-item", args=[project.slug, empty.pk])).status_code == 400


def test_calibration_items_from_a_published_release():
    import io

    import numpy as np
    from django.core.management import CommandError, call_command

    from annotation.models import CalibrationItem, Rating
    from annotation.services.releases import release_build, release_create, release_publish
    from tests.factories import make_project, make_user
    from tests.support.seed import populate

    project = make_project(slug="calrel")
    populate(project, 30, [make_user() for _ in range(3)], np.random.default_rng(2))
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    with pytest.raises(CommandError, match="not a published release"):
        call_command("calibration_from_release", "--project", "calrel", "--release", "1.0.0", stdout=io.StringIO())
    release_publish(release)
    out = io.StringIO()
    call_command("calibration_from_release", "--project", "calrel", "--release", "1.0.0", "--n", "5", stdout=out)
    assert "5 calibration items from release 1.0.0" in out.getvalue()
    items = list(CalibrationItem.objects.filter(project=project))
    assert len(items) == 5 and all(i.source == "consensus of release 1.0.0" for i in items)
    for item in items:  # the reference is the median of the experts, rounded half up
        vectors = np.array(list(Rating.objects.filter(image=item.image).values_list("values", flat=True)))
        expected = np.minimum(7, np.floor(np.median(vectors, axis=0) + 0.5)).astype(int).tolist()
        assert item.reference == expected
