"""The rate page's submit: one autocommitted statement in the common case, the careful way for
everything else (annotation.rating.submit). The contracts shared by both ways are tested
for both in test_rating_submit.py and test_queue.py; these are the cases at the fast path's edges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Assignment, AssignmentStatus, Rating, RetestRating
from annotation.rating import AssignmentConflict, AssignmentNotFound, assignment_claim, rating_submit
from tests.factories import make_project
from tests.support.seed import rating_setup


@pytest.mark.django_db(transaction=True)
def test_the_common_case_is_one_statement_and_stores_what_the_careful_way_stores():
    project, images, rater = rating_setup(n_images=2)
    a = assignment_claim(project=project, rater=rater)
    when = a.claimed_at + timedelta(seconds=42.1234)
    with CaptureQueriesContext(connection) as ctx:
        rating = rating_submit(assignment=a.pk, project=project, rater=rater, values=[2] * 40, client_token="tok",
                               active_seconds="17.25", now=when)
    assert len(ctx.captured_queries) == 1 and "EXECUTE emorate_" in ctx.captured_queries[0]["sql"]
    stored = Rating.objects.get()
    assert stored.pk == rating.pk and stored.image_id == images[0].pk == rating.image_id
    assert stored.values == [2] * 40 and stored.source == "page" and stored.emotion is None
    assert stored.seconds_spent == rating.seconds_spent == 42.123
    assert stored.active_seconds == rating.active_seconds == 17.25
    assert stored.created_at == when and stored.taxonomy_version == rating.taxonomy_version
    a.refresh_from_db()
    assert (a.status, a.rating_id, a.client_token, a.finished_at) == (AssignmentStatus.SUBMITTED, stored.pk, "tok",
                                                                      when)
    images[0].refresh_from_db()
    assert images[0].n_ratings == 1  # the database trigger counted it


@pytest.mark.django_db
def test_a_replay_with_bad_values_is_still_answered_as_a_replay():
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    first = rating_submit(assignment=a.pk, project=project, rater=rater, values=[1] * 40)
    again = rating_submit(assignment=a.pk, project=project, rater=rater, values=[99] * 40)
    assert again.pk == first.pk and Rating.objects.count() == 1


@pytest.mark.django_db
def test_an_image_rated_by_import_meanwhile_is_refused_by_name():
    project, images, rater = rating_setup(n_images=1)
    a = assignment_claim(project=project, rater=rater)
    Rating.objects.create(project=project, image=images[0], rater=rater, values=[0] * 40, scale_max=7,
                          taxonomy_version="x", source="import")
    with pytest.raises(AssignmentConflict, match="already rated this image"):
        rating_submit(assignment=a.pk, project=project, rater=rater, values=[3] * 40)
    a.refresh_from_db()
    assert a.status == AssignmentStatus.OPEN and Rating.objects.count() == 1


@pytest.mark.django_db
def test_an_assignment_of_another_project_is_not_found():
    project, _, rater = rating_setup()
    a = assignment_claim(project=project, rater=rater)
    with pytest.raises(AssignmentNotFound):
        rating_submit(assignment=a.pk, project=make_project(), rater=rater, values=[0] * 40)
    assert not Rating.objects.exists()


@pytest.mark.django_db
def test_a_retest_repeat_is_stored_apart_from_the_ratings():
    project, images, rater = rating_setup(n_images=1)
    a = assignment_claim(project=project, rater=rater)
    original = rating_submit(assignment=a.pk, project=project, rater=rater, values=[1] * 40)
    repeat = Assignment.objects.create(project=project, image=images[0], rater=rater, status="open",
                                       claimed_at=a.claimed_at, expires_at=a.expires_at + timedelta(days=1),
                                       is_retest=True)
    stored = rating_submit(assignment=repeat.pk, project=project, rater=rater, values=[2] * 40)
    assert isinstance(stored, RetestRating) and stored.original_id == original.pk
    assert Rating.objects.count() == 1 and RetestRating.objects.get().values == [2] * 40
