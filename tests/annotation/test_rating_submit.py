"""Submitting, skipping, flagging and revising ratings: services and the rate page's HTTP side."""

from __future__ import annotations

import functools
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation import taxonomy
from annotation.models import Assignment, AssignmentStatus, ImageFlag, Rating, RatingRevision
from annotation.rating import (
    AssignmentConflict,
    ForeignAssignment,
    InvalidValues,
    assignment_claim,
    rating_revise,
    rating_submit,
)
from annotation.rating.images import NEW, rate_image_url
from tests.factories import add_member, make_user, submit_as
from tests.support.seed import rating_setup

pytestmark = pytest.mark.django_db
NAMES = taxonomy.EMOTIONS


def as_mapping(values: list[int]) -> dict[str, int]:
    return dict(zip(NAMES, values, strict=True))


# --- services -----------------------------------------------------------------------------------

@pytest.fixture(params=["careful", "fast"])
def submit(request):
    """rating_submit both ways it is called: with an Assignment (the careful way: lock, checks,
    write), and as the rate page calls it, with the assignment id and the project (on PostgreSQL the
    one-statement fast path first, falling back to the careful way for everything it does not
    cover). Every contract below must hold for both."""
    return functools.partial(submit_as, request.param == "fast")


def test_submit_stores_the_vector_in_taxonomy_order_with_times(submit):
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    values = [i % 8 for i in range(40)]
    rating = submit(assignment=a, rater=rater, values=as_mapping(values), active_seconds="12.5",
                           now=a.claimed_at + timedelta(seconds=40))
    assert rating.values == values and rating.emotion is None and rating.source == "page"
    assert rating.seconds_spent == 40.0 and rating.active_seconds == 12.5
    a.refresh_from_db()
    assert a.status == AssignmentStatus.SUBMITTED and a.rating_id == rating.pk


def test_active_time_is_capped_by_the_lease_time(submit):
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    rating = submit(assignment=a, rater=rater, values=[0] * 40, active_seconds=999,
                           now=a.claimed_at + timedelta(seconds=30))
    assert rating.active_seconds == 30.0


@pytest.mark.parametrize("values, message", [
    ({**as_mapping([0] * 40), "Elation": 8}, "off the scale (allowed: 0..7)"),
    ({**as_mapping([0] * 40), "Elation": -1}, "off the scale"),
    ({**as_mapping([0] * 40), "Elation": "lots"}, "'lots' is not a number"),
    ({**as_mapping([0] * 40), "Happiness": 1}, "unknown emotion(s): 'Happiness'"),
    ({k: v for k, v in as_mapping([0] * 40).items() if k != "Jealousy & Envy"}, "missing emotion(s): 'Jealousy & Envy'"),
    ([0] * 39, "expected 40 values"),
])
def test_bad_values_are_refused_naming_the_problem_and_store_nothing(values, message, submit):
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    with pytest.raises(InvalidValues) as info:
        submit(assignment=a, rater=rater, values=values)
    assert message in str(info.value)
    assert info.value.status == 400
    assert not Rating.objects.exists()
    a.refresh_from_db()
    assert a.status == AssignmentStatus.OPEN


def test_foreign_assignment_is_refused(submit):
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    with pytest.raises(ForeignAssignment, match="belongs to another rater"):
        submit(assignment=a, rater=make_user(), values=[0] * 40)
    assert not Rating.objects.exists()


def test_second_submit_returns_the_stored_rating(submit):
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    first = submit(assignment=a, rater=rater, values=[1] * 40, client_token="t1")
    again = submit(assignment=a, rater=rater, values=[5] * 40, client_token="t2")
    assert again.pk == first.pk and again.values == [1] * 40
    assert Rating.objects.count() == 1


def test_expired_lease_is_honoured_while_the_image_still_needs_ratings(submit):
    project, images, rater = rating_setup(n_images=1, target_ratings=2, lease_minutes=30)
    a = assignment_claim(project=project, rater=rater)
    late = a.expires_at + timedelta(minutes=5)
    rating = submit(assignment=a, rater=rater, values=[0] * 40, now=late)
    assert rating.image_id == images[0].pk


def test_expired_lease_is_refused_once_others_took_the_last_slot(submit):
    project, _, rater = rating_setup(n_images=1, target_ratings=1, lease_minutes=30)
    a = assignment_claim(project=project, rater=rater)
    late = a.expires_at + timedelta(minutes=1)
    other = make_user()
    b = assignment_claim(project=project, rater=other, now=late)
    assert b is not None  # the lapsed lease returned the image to the queue
    with pytest.raises(AssignmentConflict, match="lease on this image expired"):
        submit(assignment=a, rater=rater, values=[0] * 40, now=late)
    submit(assignment=b, rater=other, values=[0] * 40, now=late)
    assert Rating.objects.count() == 1


def test_skipped_assignment_takes_no_rating(submit):
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    a.status = AssignmentStatus.SKIPPED
    a.save()
    with pytest.raises(AssignmentConflict, match="skipped"):
        submit(assignment=a, rater=rater, values=[0] * 40)


def test_revise_keeps_the_old_values_as_a_revision():
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    rating = rating_submit(assignment=a, rater=rater, values=[0] * 40)
    rating_revise(rating=rating, rater=rater, values=[2] + [0] * 39, reason="second look")
    rating_revise(rating=rating, rater=rater, values=[2] + [0] * 39)  # unchanged: no revision
    rating.refresh_from_db()
    assert rating.values[0] == 2
    revs = list(RatingRevision.objects.filter(rating=rating))
    assert [r.values for r in revs] == [[0] * 40] and revs[0].changed_by == rater
    with pytest.raises(ForeignAssignment):
        rating_revise(rating=rating, rater=make_user(), values=[0] * 40)


def test_binary_revision_reopens_a_closed_item():
    project, images, rater = rating_setup(mode="binary", n_images=1, target_ratings=3)
    images[0].extra = {"emotion": "Elation"}
    images[0].save()
    a = assignment_claim(project=project, rater=rater)
    rating = rating_submit(assignment=a, rater=rater, values=[0])
    a.item.refresh_from_db()
    assert a.item.closed
    rating_revise(rating=rating, rater=rater, values=[1])
    a.item.refresh_from_db()
    assert (a.item.n_yes, a.item.n_no, a.item.closed) == (1, 0, False)


# --- HTTP ---------------------------------------------------------------------------------------

def rate_url(project) -> str:
    return reverse("annotation:rate", args=[project.slug])


def submit_url(project, a) -> str:
    return reverse("annotation:rate-submit", args=[project.slug, a.pk])


def post_values(values: list[int], **extra) -> dict[str, object]:
    return {**{f"emo:{n}": v for n, v in zip(NAMES, values, strict=True)}, **extra}


def test_rate_page_access(client):
    project, _, rater = rating_setup()
    assert client.get(rate_url(project)).status_code == 302  # anonymous -> login
    assert client.get(rate_url(project))["Location"].startswith("/accounts/login/")
    outsider = make_user()
    client.force_login(outsider)
    assert client.get(rate_url(project)).status_code == 403
    lead = make_user(role="lead")
    add_member(project, lead)
    client.force_login(lead)
    assert client.get(rate_url(project)).status_code == 403
    client.force_login(rater)
    assert client.get(rate_url(project)).status_code == 200


def test_rate_page_shows_every_emotion_by_name_and_no_other_raters_data(client):
    project, images, rater = rating_setup(target_ratings=4)
    other = make_user(email="other-rater@example.org")
    b = assignment_claim(project=project, rater=other)
    rating_submit(assignment=b, rater=other, values=[6] * 40)
    client.force_login(rater)
    html = client.get(rate_url(project)).content.decode()
    for name in NAMES:
        assert f'aria-label="{name.replace("&", "&amp;")}"' in html
    assert html.count('type="range"') == 40
    assert "not present" in html and "very strong" in html
    assert "other-rater@example.org" not in html and 'value="6"' not in html
    assert "You have rated <strong>0</strong>" in html


def test_rate_page_get_query_count(client, django_assert_num_queries):
    project, _, rater = rating_setup()
    client.force_login(rater)
    client.get(rate_url(project))  # claims; warms the coverage cache
    # user, project + membership, the open lease, own count (session and coverage are cached)
    with django_assert_num_queries(4):
        assert client.get(rate_url(project)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_htmx_submit_swaps_in_the_next_image_with_pinned_query_count(client, django_assert_num_queries):
    """As in production: autocommit outside the view's own transactions (pytest-django's default
    wraps every test in a transaction, which turns each transaction into a savepoint)."""
    project, images, rater = rating_setup()
    client.force_login(rater)
    client.get(rate_url(project))
    a = Assignment.objects.get(rater=rater, status="open")
    # user, project; submit: lock + insert rating + finish the lease (one autocommitted statement);
    # next claim (no open lease left, the session is cached): lock the candidates, re-count the room,
    # insert the lease and read the rater's count (one autocommitted statement)
    with django_assert_num_queries(4):  # sent as the page's htmx sends it: one JSON object
        resp = client.post(submit_url(project, a), json.dumps(post_values([3] + [0] * 39, client_token="x",
                                                                          active_seconds="9")),
                           content_type="application/json", HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert html.lstrip().startswith("<section id=\"rate-stage\"") and "<html" not in html
    nxt = Assignment.objects.get(rater=rater, status="open")
    assert nxt.image_id == images[1].pk and f'data-assignment="{nxt.pk}"' in html
    assert rate_image_url(project_id=project.pk, slug=project.slug, rater_id=rater.pk, image_id=images[2].pk,
                          serving=NEW) in html  # prefetch hint for the image after (the rater's opaque URL)
    assert "You have rated <strong>1</strong>" in html
    # a replay of the same POST returns the stored result (200), nothing new is stored
    again = client.post(submit_url(project, a), post_values([5] * 40), HTTP_HX_REQUEST="true")
    assert again.status_code == 200
    assert Rating.objects.get().values == [3] + [0] * 39


def test_submit_without_htmx_redirects_back(client):
    project, _, rater = rating_setup()
    client.force_login(rater)
    client.get(rate_url(project))
    a = Assignment.objects.get(rater=rater)
    resp = client.post(submit_url(project, a), post_values([0] * 40))
    assert resp.status_code == 302 and resp["Location"] == rate_url(project)


@pytest.mark.parametrize("mutate, status, text", [
    (lambda d: d.update({"emo:Elation": "9"}), 400, "off the scale (allowed: 0..7)"),
    (lambda d: d.update({"emo:Gloom": "1"}), 400, "unknown emotion(s): &#x27;Gloom&#x27;"),
    (lambda d: d.pop("emo:Awe"), 400, "missing emotion(s): &#x27;Awe&#x27;"),
])
@pytest.mark.parametrize("encoding", ["form", "json"])
def test_bad_submit_is_4xx_with_a_clear_message(client, mutate, status, text, encoding):
    """Both ways the fields arrive: urlencoded (a form without JavaScript) and JSON (the page's htmx)."""
    project, _, rater = rating_setup()
    client.force_login(rater)
    client.get(rate_url(project))
    a = Assignment.objects.get(rater=rater)
    data = post_values([0] * 40)
    mutate(data)
    if encoding == "json":
        resp = client.post(submit_url(project, a), json.dumps(data), content_type="application/json",
                           HTTP_HX_REQUEST="true")
    else:
        resp = client.post(submit_url(project, a), data, HTTP_HX_REQUEST="true")
    assert resp.status_code == status
    assert text in resp.content.decode()
    assert not Rating.objects.exists()


@pytest.mark.parametrize("body, text", [
    ('{"emo:Awe": "1",', "the request body is not valid JSON"),
    ('[0, 0, 0]', "the request body must be a JSON object"),
    ('\udcff', "the request body is not valid JSON"),
])
def test_a_json_submit_that_is_not_a_json_object_is_refused_and_stores_nothing(client, body, text):
    project, _, rater = rating_setup()
    client.force_login(rater)
    client.get(rate_url(project))
    a = Assignment.objects.get(rater=rater)
    resp = client.post(submit_url(project, a), body.encode("utf-8", "surrogateescape"),
                       content_type="application/json", HTTP_HX_REQUEST="true")
    assert resp.status_code == 400 and text in resp.content.decode()
    assert not Rating.objects.exists()
    assert Assignment.objects.get(pk=a.pk).status == "open"  # the lease is kept for a proper submit
    ok = client.post(submit_url(project, a), json.dumps(post_values([2] * 40, client_token="t1")),
                     content_type="application/json", HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and Rating.objects.get().values == [2] * 40


def test_foreign_and_expired_assignments_over_http(client):
    project, _, rater = rating_setup(n_images=1, target_ratings=1)
    other = make_user()
    add_member(project, other)
    a = assignment_claim(project=project, rater=other)
    client.force_login(rater)
    resp = client.post(submit_url(project, a), post_values([0] * 40), HTTP_HX_REQUEST="true")
    assert resp.status_code == 403 and "belongs to another rater" in resp.content.decode()
    # rater's own lapsed lease after someone else took the last slot: 409, nothing stored
    Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    mine = assignment_claim(project=project, rater=rater)
    Assignment.objects.filter(pk=mine.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assignment_claim(project=project, rater=other)  # the other rater is back and takes the image again
    resp = client.post(submit_url(project, mine), post_values([0] * 40), HTTP_HX_REQUEST="true")
    assert resp.status_code == 409 and "lease on this image expired" in resp.content.decode()
    assert not Rating.objects.exists()


def test_skip_and_flag_over_http(client):
    project, images, rater = rating_setup()
    client.force_login(rater)
    client.get(rate_url(project))
    a = Assignment.objects.get(rater=rater, status="open")
    resp = client.post(reverse("annotation:rate-skip", args=[project.slug, a.pk]), {"reason": "bogus"},
                       HTTP_HX_REQUEST="true")
    assert resp.status_code == 400 and "skip reason" in resp.content.decode()
    resp = client.post(reverse("annotation:rate-skip", args=[project.slug, a.pk]), {"reason": "cannot_judge"},
                       HTTP_HX_REQUEST="true")
    assert resp.status_code == 200 and "Skipped." in resp.content.decode()
    b = Assignment.objects.get(rater=rater, status="open")
    resp = client.post(reverse("annotation:rate-flag", args=[project.slug, b.pk]),
                       {"reason": "not_one_face", "note": "two people"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    flag = ImageFlag.objects.get()
    assert (flag.image_id, flag.rater_id, flag.reason, flag.note) == (b.image_id, rater.pk, "not_one_face", "two people")
    b.image.refresh_from_db()
    assert not b.image.flagged and flag.resolved_at is None  # waits for a lead (#16)
    assert "won&#x27;t be shown this image again" in resp.content.decode()


def test_history_and_revise_pages(client):
    project, _, rater = rating_setup()
    client.force_login(rater)
    a = assignment_claim(project=project, rater=rater)
    rating = rating_submit(assignment=a, rater=rater, values=[4] + [0] * 39)
    html = client.get(reverse("annotation:rate-history", args=[project.slug])).content.decode()
    assert f"{NAMES[0]} 4" in html
    url = reverse("annotation:rate-revise", args=[project.slug, rating.pk])
    assert client.get(url).status_code == 200
    resp = client.post(url, post_values([0, 2] + [0] * 38))
    assert resp.status_code == 302
    rating.refresh_from_db()
    assert rating.values[:2] == [0, 2]
    assert RatingRevision.objects.get().values == [4] + [0] * 39
    bad = client.post(url, post_values([0, 9] + [0] * 38))
    assert bad.status_code == 400 and "off the scale" in bad.content.decode()
    someone = make_user()
    add_member(project, someone)
    client.force_login(someone)
    assert client.get(url).status_code == 404


def test_binary_page_and_submit(client):
    project, images, rater = rating_setup(mode="binary", n_images=2, target_ratings=3)
    client.force_login(rater)
    html = client.get(rate_url(project)).content.decode()
    assert ">Yes</button>" in html and ">No</button>" in html
    a = Assignment.objects.get(rater=rater, status="open")
    assert NAMES[a.item.emotion].replace("&", "&amp;") in html
    resp = client.post(submit_url(project, a), {"answer": "2"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 400 and "off the scale (allowed: 0..1)" in resp.content.decode()
    Assignment.objects.filter(pk=a.pk).update(claimed_at=a.claimed_at - timedelta(seconds=10))
    resp = client.post(submit_url(project, a), {"answer": "1", "active_seconds": "1.75"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 200
    r = Rating.objects.get()
    assert (r.emotion, r.values, r.active_seconds) == (a.item.emotion, [1], 1.75)


def test_a_json_submit_needs_the_csrf_token_in_its_header():
    """The JSON body carries no form token the CSRF check could read: the page's htmx sends the
    token in the X-CSRFToken header (base.html's hx-headers); without it the submit is refused."""
    from django.test import Client

    project, _, rater = rating_setup()
    client = Client(enforce_csrf_checks=True)
    client.force_login(rater)
    assert client.get(rate_url(project)).status_code == 200  # sets the CSRF cookie
    a = Assignment.objects.get(rater=rater)
    body = json.dumps(post_values([1] * 40, client_token="t"))
    refused = client.post(submit_url(project, a), body, content_type="application/json", HTTP_HX_REQUEST="true")
    assert refused.status_code == 403 and not Rating.objects.exists()
    ok = client.post(submit_url(project, a), body, content_type="application/json", HTTP_HX_REQUEST="true",
                     HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert ok.status_code == 200 and Rating.objects.get().values == [1] * 40
