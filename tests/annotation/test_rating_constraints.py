"""Invariants the database itself enforces (PostgreSQL), whatever code writes the rows."""

import pytest
from django.db import IntegrityError, connection, transaction

from annotation.models import Rating, RatingRevision
from tests.factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def rating(project, image, rater, values, emotion=None, scale_max=None):
    return Rating.objects.create(project=project, image=image, rater=rater, emotion=emotion, values=values,
                                 scale_max=project.scale_max if scale_max is None else scale_max,
                                 taxonomy_version="emonet-face-1")


def refused(fn, exc=IntegrityError) -> str:
    with pytest.raises(exc) as info, transaction.atomic():
        fn()
    return str(info.value)


def test_one_rating_per_rater_and_image():
    project = make_project()
    image, rater = make_image(project), make_user()
    rating(project, image, rater, [0] * 40)
    msg = refused(lambda: rating(project, image, rater, [1] * 40))
    assert "rating_one_per_rater_image" in msg
    assert Rating.objects.count() == 1
    rating(project, image, make_user(), [1] * 40)  # another rater is fine


def test_binary_mode_one_rating_per_rater_image_and_emotion():
    project = make_project(mode="binary")
    image, rater = make_image(project), make_user()
    rating(project, image, rater, [1], emotion=3)
    rating(project, image, rater, [0], emotion=4)
    assert "rating_one_per_rater_image_emotion" in refused(lambda: rating(project, image, rater, [0], emotion=3))


@pytest.mark.parametrize("values, why", [
    ([8] + [0] * 39, "above the scale"),
    ([-1] + [0] * 39, "negative"),
    ([0] * 39, "39 values for 40 emotions"),
    ([0] * 41, "41 values"),
])
def test_values_are_range_and_length_checked(values, why):
    project = make_project()
    image, rater = make_image(project), make_user()
    assert "rating_values_valid" in refused(lambda: rating(project, image, rater, values)), why
    assert not Rating.objects.exists()


def test_null_element_is_refused():
    project = make_project()
    image, rater = make_image(project), make_user()
    r = rating(project, image, rater, [0] * 40)
    with pytest.raises(IntegrityError, match="rating_values_valid"), transaction.atomic(), connection.cursor() as cur:
        cur.execute('UPDATE annotation_rating SET "values"[3] = NULL WHERE id = %s', [r.pk])


def test_scale_is_the_ratings_own():
    project = make_project(scale_max=2)
    image, rater = make_image(project), make_user()
    assert "rating_values_valid" in refused(lambda: rating(project, image, rater, [3] + [0] * 39))
    rating(project, image, rater, [2] + [0] * 39)


def test_binary_rating_holds_exactly_one_value():
    project = make_project(mode="binary")
    image, rater = make_image(project), make_user()
    assert "rating_values_valid" in refused(lambda: rating(project, image, rater, [1, 0], emotion=2))
    assert "rating_values_valid" in refused(lambda: rating(project, image, rater, [2], emotion=2))


def test_ratings_and_revisions_are_never_deleted():
    project = make_project()
    r = rating(project, make_image(project), make_user(), [0] * 40)
    assert "never deleted" in refused(lambda: Rating.objects.filter(pk=r.pk).delete())
    rev = RatingRevision.objects.create(rating=r, values=[0] * 40)
    assert "never deleted" in refused(lambda: rev.delete())
    assert Rating.objects.filter(pk=r.pk).exists() and RatingRevision.objects.filter(pk=rev.pk).exists()


def test_negative_time_is_refused():
    project = make_project()
    r = rating(project, make_image(project), make_user(), [0] * 40)
    r.seconds_spent = -1
    assert "rating_seconds_nonnegative" in refused(lambda: r.save())


def test_binary_project_must_use_a_0_1_scale():
    assert "project_binary_scale_is_0_1" in refused(lambda: make_project(mode="binary", scale_max=7))
