"""Finding 7 of #16: rater-triggerable 500s in the JSON submit. A deeply nested body and a
400-digit `active_seconds` must answer 400 with a message and store nothing (both ways the submit
runs: the one-statement fast path and the careful way)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from annotation import taxonomy
from annotation.models import Assignment, Rating
from tests.support.seed import rating_setup

pytestmark = pytest.mark.django_db


def _claimed(client):
    project, _, rater = rating_setup()
    client.force_login(rater)
    client.get(reverse("annotation:rate", args=[project.slug]))
    a = Assignment.objects.get(rater=rater)
    return project, a, reverse("annotation:rate-submit", args=[project.slug, a.pk])


def test_a_deeply_nested_json_body_is_refused_with_400(client):
    _, a, url = _claimed(client)
    body = "[" * 200_000 + "]" * 200_000
    resp = client.post(url, body, content_type="application/json", HTTP_HX_REQUEST="true")
    assert resp.status_code == 400
    assert "nested too deeply" in resp.content.decode()
    assert not Rating.objects.exists() and Assignment.objects.get(pk=a.pk).status == "open"


@pytest.mark.parametrize("digits", [400, 4000])
def test_a_huge_active_seconds_is_refused_with_400(client, digits):
    _, a, url = _claimed(client)
    data = {f"emo:{n}": 0 for n in taxonomy.EMOTIONS}
    body = json.dumps(data)[:-1] + ', "active_seconds": 1' + "0" * digits + "}"
    resp = client.post(url, body, content_type="application/json", HTTP_HX_REQUEST="true")
    assert resp.status_code == 400
    text = resp.content.decode()
    assert "active_seconds" in text and "0" * 100 not in text  # named, without echoing 400 digits
    assert not Rating.objects.exists() and Assignment.objects.get(pk=a.pk).status == "open"


def test_the_api_refuses_deeply_nested_json_with_400(client):
    from accounts.models import Role
    from tests.factories import add_member, make_project, make_user

    project = make_project(slug="api7")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    resp = client.post(reverse("api:release-list", args=[project.slug]), "[" * 200_000 + "]" * 200_000,
                       content_type="application/json")
    assert resp.status_code == 400 and "nested too deeply" in resp.json()["detail"]
