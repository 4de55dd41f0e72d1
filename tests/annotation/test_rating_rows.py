import numpy as np
import pytest

from annotation import pgcopy, selectors
from annotation.models import Rating
from tests.factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def add(project, image, rater, values, emotion=None):
    return Rating.objects.create(project=project, image=image, rater=rater, emotion=emotion, values=values,
                                 scale_max=project.scale_max, taxonomy_version="emonet-face-1")


def test_copy_reader_matches_the_orm_row_for_row():
    rng = np.random.default_rng(3)
    project, other = make_project(), make_project()
    raters = [make_user() for _ in range(5)]
    images = [make_image(project) for _ in range(60)]
    expected = []
    for image in images:
        for rater in rng.choice(raters, size=3, replace=False):
            values = [int(v) for v in rng.integers(0, 8, size=40)]
            add(project, image, rater, values)
            expected.append((image.pk, rater.pk, values))
    add(other, make_image(other), raters[0], [7] * 40)  # another project's rating stays out
    rows = selectors.rating_rows(project)
    expected.sort()
    assert rows.values.dtype == np.int16 and rows.values.shape == (180, 40)
    assert rows.image_ids.tolist() == [e[0] for e in expected]
    assert rows.rater_ids.tolist() == [e[1] for e in expected]
    assert rows.values.tolist() == [e[2] for e in expected]


def test_flagged_images_are_left_out():
    project = make_project()
    rater = make_user()
    kept, flagged = make_image(project), make_image(project, flagged=True)
    add(project, kept, rater, [1] * 40)
    add(project, flagged, rater, [2] * 40)
    rows = selectors.rating_rows(project)
    assert rows.image_ids.tolist() == [kept.pk]


def test_binary_votes_per_emotion():
    project = make_project(mode="binary")
    a, b = make_user(), make_user()
    image = make_image(project)
    add(project, image, a, [1], emotion=5)
    add(project, image, b, [0], emotion=5)
    add(project, image, a, [1], emotion=6)
    rows = selectors.rating_rows(project, emotion=5)
    assert rows.values.tolist() == [[1], [0]] and sorted(rows.rater_ids.tolist()) == sorted([a.pk, b.pk])
    assert selectors.rating_rows(project, emotion=7).values.shape == (0, 1)


def test_empty_project():
    rows = selectors.rating_rows(make_project())
    assert rows.values.shape == (0, 40) and rows.image_ids.shape == (0,)


def test_parser_refuses_a_foreign_stream():
    with pytest.raises(pgcopy.CopyFormatError, match="not a PostgreSQL binary COPY stream"):
        pgcopy.parse_rating_rows(b"image,rater\n1,2\n", 40)


def test_fixed_row_reader_reads_what_postgresql_sends_and_refuses_other_layouts():
    import io

    from django.db import connection

    buf = io.BytesIO()
    with connection.cursor() as cur:
        cur.copy_expert("COPY (SELECT g::int8, g * 0.5::float8 FROM generate_series(-2, 1000) g) "
                        "TO STDOUT WITH (FORMAT binary)", buf)
    got = pgcopy.parse_fixed_rows(buf.getbuffer(), [("n", ">i8"), ("half", ">f8")])
    assert got["n"].tolist() == list(range(-2, 1001)) and got["n"].dtype == np.int64
    assert np.array_equal(got["half"], np.arange(-2, 1001) * 0.5)
    with pytest.raises(pgcopy.CopyFormatError, match="rows are not all"):
        pgcopy.parse_fixed_rows(buf.getbuffer(), [("n", ">i4"), ("half", ">f8")])
    nulls = io.BytesIO()
    with connection.cursor() as cur:
        cur.copy_expert("COPY (SELECT NULL::float8, 1::int8) TO STDOUT WITH (FORMAT binary)", nulls)
    with pytest.raises(pgcopy.CopyFormatError):
        pgcopy.parse_fixed_rows(nulls.getbuffer(), [("x", ">f8"), ("n", ">i8")])
