"""Finding 11 of #16: a test-retest repeat looks like new work in the page, the fragment and the
URLs. Images of the rate flow are named by opaque tokens per rater and serving (a repeat never
shows the URL of the rater's first rating of the image, nor the history's); a repeat carries a
prefetch hint like new work; the image route opens for the token's own rater only."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from accounts.models import Role
from annotation import taxonomy
from annotation.models import Assignment
from tests.factories import add_member, make_project, make_user
from tests.support.seed import image_with_file

pytestmark = pytest.mark.django_db
IMG = re.compile(r'<img src="([^"]+)" alt="Face to rate"')
NEXT = re.compile(r'data-next-image="([^"]+)"')


def test_tokens_round_trip_per_rater_and_serving():
    from annotation.rating import imagetoken

    key, other = imagetoken.rater_key(b"s", project_id=1, rater_id=2), imagetoken.rater_key(b"s", project_id=1, rater_id=3)
    tokens = {imagetoken.token_make(key, 42, s) for s in (imagetoken.NEW, imagetoken.RETEST, imagetoken.HISTORY)}
    assert len(tokens) == 3 and all("42" not in t for t in tokens)
    for s in (0, 1, 2, 3):
        assert imagetoken.token_open(key, imagetoken.token_make(key, 42, s)) == (42, s)
        assert imagetoken.token_open(other, imagetoken.token_make(key, 42, s)) is None
    assert imagetoken.token_open(key, "A" * 22) is None and imagetoken.token_open(key, "x") is None


def _stage_urls(html: str) -> tuple[str, str | None]:
    img = IMG.search(html)
    assert img is not None, html[:500]
    nxt = NEXT.search(html)
    return img.group(1), nxt.group(1) if nxt else None


def test_a_repeat_has_its_own_url_and_a_prefetch_hint_like_new_work(client):
    project = make_project(slug="rt11", target_ratings=3, retest_share=0.5, retest_min_hours=0)
    images = [image_with_file(project, priority=100.0 - i) for i in range(30)]
    rater = make_user()
    add_member(project, rater)
    client.force_login(rater)
    first_url: dict[int, str] = {}
    pairs: list[tuple[str | None, str]] = []  # (previous stage's hint, this stage's new image)
    repeats: list[tuple[Assignment, str, str | None]] = []
    html = client.get(reverse("annotation:rate", args=[project.slug])).content.decode()
    previous_hint = None
    for _ in range(20):
        a = Assignment.objects.get(rater=rater, status="open")
        url, hint = _stage_urls(html)
        assert "/media/" not in html and a.image.sha256 not in html  # no hash, no stored name
        assert hint is not None and hint != url  # every stage, new work or repeat, has a prefetch hint
        if a.is_retest:
            repeats.append((a, url, hint))
        else:
            first_url[a.image_id] = url
            pairs.append((previous_hint, url))
        previous_hint = hint
        resp = client.post(reverse("annotation:rate-submit", args=[project.slug, a.pk]),
                           {f"emo:{n}": "1" for n in taxonomy.EMOTIONS}, HTTP_HX_REQUEST="true")
        assert resp.status_code == 200
        html = resp.content.decode()  # the fragment of the next stage
    assert repeats
    history = client.get(reverse("annotation:rate-history", args=[project.slug])).content.decode()
    assert "/media/" not in history
    for retest, retest_url, _ in repeats:
        # a URL of its own: not the one of the rater's first rating of the image, not the history's
        assert retest_url != first_url[retest.image_id] and retest_url not in first_url.values()
        assert retest_url not in history and first_url[retest.image_id] not in history
    # the hint names the URL the next new stage shows (the browser's prefetch is used)
    assert any(h == u for h, u in pairs[1:]), pairs
    retest, retest_url, retest_hint = repeats[0]
    # every one of these URLs serves the image to the rater
    for url in (retest_url, retest_hint, first_url[retest.image_id]):
        got = client.get(url)
        assert got.status_code == 200 and got["Content-Type"] == "image/jpeg"
        assert b"".join(got.streaming_content)[:2] == b"\xff\xd8"
    assert images


def test_an_image_url_opens_for_its_own_rater_only(client):
    project = make_project(slug="own11")
    image_with_file(project, priority=2.0)
    rater, other_rater, lead = make_user(), make_user(), make_user(Role.LEAD)
    add_member(project, rater, other_rater, lead)
    outsider = make_user()
    add_member(make_project(slug="else11"), outsider)
    client.force_login(rater)
    url, _ = _stage_urls(client.get(reverse("annotation:rate", args=[project.slug])).content.decode())
    assert client.get(url).status_code == 200
    client.force_login(other_rater)  # a member, but not the token's rater
    assert client.get(url).status_code == 404
    client.force_login(lead)
    assert client.get(url).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code == 302
    client.force_login(rater)
    forged = url.rstrip("/").rsplit("/", 1)[0] + "/" + "A" * 22 + "/"
    assert client.get(forged).status_code == 404


def test_the_stage_before_a_repeat_prefetches_the_repeat(client):
    """The hint of the stage before names what comes next, a repeat included: a hint that does not
    come true would give the repeat away."""
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import Rating

    project = make_project(slug="pre11", target_ratings=3, retest_share=0.5, retest_min_hours=1)
    rater = make_user()
    add_member(project, rater)
    for i in range(10):  # rated by the rater five hours ago: eligible for repeats
        Rating.objects.create(project=project, image=image_with_file(project, priority=-1.0 - i), rater=rater,
                              scale_max=7, taxonomy_version="emonet-face-1", values=[1] * 40)
    Rating.objects.filter(project=project).update(created_at=timezone.now() - timedelta(hours=5))
    for i in range(20):
        image_with_file(project, priority=100.0 - i)  # new work
    client.force_login(rater)
    html = client.get(reverse("annotation:rate", args=[project.slug])).content.decode()
    previous_hint, n_repeats, n_new_hits = None, 0, 0
    for _ in range(16):
        a = Assignment.objects.get(rater=rater, status="open")
        url, hint = _stage_urls(html)
        if previous_hint is not None:
            if a.is_retest:
                assert previous_hint == url, "the stage before a repeat names it"
                n_repeats += 1
            n_new_hits += (not a.is_retest and previous_hint == url)
        previous_hint = hint
        html = client.post(reverse("annotation:rate-submit", args=[project.slug, a.pk]),
                           {f"emo:{n}": "2" for n in taxonomy.EMOTIONS}, HTTP_HX_REQUEST="true").content.decode()
    assert n_repeats >= 2 and n_new_hits >= 2
