"""A new rating's count keeps its image's rounds (BatchImage.open, priority) and the coverage tallies
(annotation/db/postgres.py: emorate_image_count_ratings, then the image trigger emorate_image_tally, which
also syncs the rounds: migration 0026), whatever stores the rating; and every other change of an image (a raw
UPDATE of n_ratings, a target change, a priority change, a send-back) does too. Each check compares
with a recount from the images themselves; real PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.files.base import ContentFile
from django.db import connection

from annotation.models import BatchImage, Image, ImageTally, Project, Rating
from annotation.rating import assignment_claim, rating_submit
from annotation.selectors_dashboard import image_tally
from annotation.services import adjudication
from annotation.services import batches as service
from annotation.taxonomy import N_EMOTIONS
from tests.factories import add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db
ZEROS = [0] * N_EMOTIONS


def _image(project: Project, **extra) -> Image:
    im = make_image(project, **extra)
    im.file.save(f"{im.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return im


def _direct(project: Project) -> Counter[tuple[int, str, int | None, str, bool]]:
    return Counter((im.n_ratings, im.ethnicity, im.age, im.gender, im.adjudication == "more_ratings")
                   for im in Image.objects.filter(project=project, flagged=False))


def _tallied(project: Project) -> Counter[tuple[int, str, int | None, str, bool]]:
    out: Counter[tuple[int, str, int | None, str, bool]] = Counter()
    for r in image_tally(project)[0]:
        out[(r.n_ratings, r.ethnicity, r.age, r.gender, r.sent_back)] += r.images
    return +out


def _rounds_recounted(project: Project) -> None:
    """Every BatchImage of the project as its image says: its priority, and open while the image
    has room in that round."""
    for bi in BatchImage.objects.filter(batch__project=project).select_related("batch", "image"):
        im = bi.image
        want = not im.flagged and bool(im.file) and im.n_ratings < bi.batch.target_ratings + im.extra_target
        assert (bi.open, bi.priority) == (want, im.priority), (bi.batch.name, im.pk)


def _check(project: Project) -> None:
    assert _tallied(project) == _direct(project)
    _rounds_recounted(project)


def _rate(im: Image, rater, value: int = 1) -> Rating:
    return Rating.objects.create(project=im.project, image=im, rater=rater, values=[value] * N_EMOTIONS, scale_max=7,
                                 taxonomy_version=im.project.taxonomy_version)


def test_a_ratings_count_keeps_rounds_and_tallies_whatever_stores_it():
    project = make_project(target_ratings=2)
    raters = [make_user() for _ in range(5)]
    add_member(project, *raters)
    lead = make_user()
    labels = [("A", 20, "man"), ("B", 30, "woman"), ("", None, "")]
    images = [_image(project, ethnicity=e, age=a, gender=g, priority=float(k))
              for k, (e, a, g) in enumerate(labels[k % 3] for k in range(12))]
    one = service.batch_create(project=project, name="One", image_ids=[im.pk for im in images[:6]], target_ratings=1)
    three = service.batch_create(project=project, name="Three", image_ids=[im.pk for im in images[3:9]],
                                 target_ratings=3)
    adjudication.image_flag(image=images[4], actor=lead, reason="artifact")  # flagged, in both rounds
    adjudication.image_send_back(image=images[5], actor=lead, extra=1)
    _check(project)
    assert BatchImage.objects.filter(batch=one, open=True).count() == 5  # the flagged one is closed

    # one rating: the image leaves its count and joins the next, in one pair of delta rows
    rows = ImageTally.objects.filter(project=project).count()
    _rate(images[0], raters[0])
    _check(project)
    assert ImageTally.objects.filter(project=project).count() == rows + 2
    assert not BatchImage.objects.get(batch=one, image=images[0]).open  # round One's target reached
    # a rating of a flagged image changes no tally (flagged images are not counted), its rounds stay closed
    rows = ImageTally.objects.filter(project=project).count()
    _rate(images[4], raters[0])
    _check(project)
    assert ImageTally.objects.filter(project=project).count() == rows
    # many images and raters in one statement (an import), the sent-back image among them
    Rating.objects.bulk_create([Rating(project=project, image=im, rater=r, values=[2] * N_EMOTIONS, scale_max=7,
                                       taxonomy_version=project.taxonomy_version)
                                for im in images[2:10] for r in raters[1:3]])
    _check(project)
    # round Three (target 3): two ratings each leave room, but never for the flagged image
    assert {bi.image_id for bi in BatchImage.objects.filter(batch=three, open=True)} == {
        images[k].pk for k in (3, 5, 6, 7, 8)}
    # the rate page's way (claim, then the one-statement submit)
    for r in raters[3:]:
        a = assignment_claim(project=project, rater=r)
        assert a is not None
        rating_submit(assignment=a.pk, project=project, rater=r, values=ZEROS)
        _check(project)


def test_updates_outside_the_count_trigger_still_go_through_the_image_triggers():
    """A raw UPDATE of n_ratings (a repair), a lead's change of target (queue_full, updated inside a
    trigger), a priority change and a send-back: rounds and tallies follow each, and a change that
    moves no counted column adds no tally row."""
    project = make_project(target_ratings=2)
    rater = make_user()
    images = [_image(project, ethnicity="A") for _ in range(4)]
    service.batch_create(project=project, name="R", image_ids=[im.pk for im in images], target_ratings=2)
    _rate(images[0], rater)
    Image.objects.filter(pk=images[1].pk).update(n_ratings=3)
    _check(project)
    assert not BatchImage.objects.get(image=images[1]).open
    rows = ImageTally.objects.filter(project=project).count()
    project.target_ratings = 1
    project.save(update_fields=["target_ratings"])
    assert Image.objects.get(pk=images[0].pk).queue_full  # the target trigger ran
    Image.objects.filter(project=project).update(priority=2.5)
    _check(project)
    assert ImageTally.objects.filter(project=project).count() == rows
    adjudication.image_send_back(image=Image.objects.get(pk=images[1].pk), actor=make_user(), extra=2)
    _check(project)
    assert BatchImage.objects.get(image=images[1]).open  # 3 < 2 + 2
    with connection.cursor() as cur:  # one statement, two images, one of them twice
        cur.execute('INSERT INTO annotation_rating (project_id, image_id, rater_id, "values", scale_max, '
                    "taxonomy_version, source, created_at, updated_at) "
                    "SELECT %s, i, u, %s::smallint[], 7, 'emonet-face-1', 'import', now(), now() "
                    "FROM unnest(%s::bigint[], %s::bigint[]) AS t(i, u)",
                    [project.pk, [1] * N_EMOTIONS, [images[2].pk, images[2].pk, images[3].pk],
                     [make_user().pk, make_user().pk, make_user().pk]])
    _check(project)
    assert Image.objects.get(pk=images[2].pk).n_ratings == 2
