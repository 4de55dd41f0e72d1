"""The lead's coverage tallies (#21): ImageTally rows kept by triggers on annotation_image always sum to
what a pass over the images counts, whatever changes the images, and folding them changes nothing."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from django.db import connection

from annotation.models import Image, ImageTally, Project, Rating
from annotation.selectors_dashboard import _strata_counts, image_tally, overview
from annotation.services import adjudication
from annotation.services.tallies import image_tally_compact
from annotation.taxonomy import N_EMOTIONS
from tests.factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def _direct(project: Project) -> Counter[tuple[int, str, int | None, str, bool]]:
    """The reference: one pass over the project's non-flagged images."""
    return Counter((im.n_ratings, im.ethnicity, im.age, im.gender, im.adjudication == "more_ratings")
                   for im in Image.objects.filter(project=project, flagged=False))


def _tallied(project: Project) -> Counter[tuple[int, str, int | None, str, bool]]:
    out: Counter[tuple[int, str, int | None, str, bool]] = Counter()
    for r in image_tally(project)[0]:
        out[(r.n_ratings, r.ethnicity, r.age, r.gender, r.sent_back)] += r.images
    return +out


def test_tallies_follow_every_change_to_the_images_and_folding_keeps_them() -> None:
    rng = np.random.default_rng(21)
    project, other = make_project(target_ratings=2), make_project()
    raters = [make_user() for _ in range(4)]
    lead = make_user()
    labels = [("A", 20, "man"), ("B", 30, "woman"), ("", None, ""), ("A", 30, "woman")]
    images = [make_image(project, ethnicity=e, age=a, gender=g) for e, a, g in
              (labels[int(k)] for k in rng.integers(0, 4, 40))]
    make_image(other, ethnicity="Z")  # another project's images never count here
    assert _tallied(project) == _direct(project) and sum(_tallied(project).values()) == 40

    def check() -> None:
        assert _tallied(project) == _direct(project)

    # ratings one at a time and in one statement (the triggers count per statement)
    for im in images[:10]:
        Rating.objects.create(project=project, image=im, rater=raters[0], values=[1] * N_EMOTIONS, scale_max=7,
                              taxonomy_version=project.taxonomy_version)
    check()
    Rating.objects.bulk_create([Rating(project=project, image=im, rater=r, values=[2] * N_EMOTIONS, scale_max=7,
                                       taxonomy_version=project.taxonomy_version)
                                for im in images[:20] for r in raters[1:3]])
    check()
    image_tally_compact(project)
    check()
    # a lead flags one image, sends another back, and a demographic label is corrected
    adjudication.image_flag(image=images[3], actor=lead, reason="artifact")
    adjudication.image_send_back(image=images[5], actor=lead, extra=1)
    Image.objects.filter(pk=images[7].pk).update(ethnicity="C", age=40)
    check()
    # a flag is taken back; unrated images are deleted; a bulk update of every image
    Image.objects.filter(pk=images[3].pk).update(flagged=False)
    Image.objects.filter(pk__in=[im.pk for im in images[30:35]]).delete()
    Image.objects.filter(project=project).update(gender="person")
    Image.objects.filter(project=project).update(priority=0.5)  # changes no counted column: no new row
    check()
    rows_before = ImageTally.objects.filter(project=project).count()
    assert image_tally_compact(project)
    check()
    assert ImageTally.objects.filter(project=project).count() < rows_before
    assert sum(_tallied(project).values()) == 35

    # the pages read the tallies: the same figures as counting the images
    data = overview(project)
    by_count = Counter(im.n_ratings for im in Image.objects.filter(project=project, flagged=False))
    assert dict(data.coverage) == {k: by_count.get(k, 0) for k in range(max(by_count) + 1)}
    assert data.disputes_open == Image.objects.filter(project=project, adjudication="more_ratings").count() == 1
    strata = {(k, v): (n, r, d) for k, v, n, r, d in _strata_counts(project)}
    for key in ("ethnicity", "age", "gender"):
        for value in {getattr(im, key) for im in Image.objects.filter(project=project, flagged=False)}:
            mine = [im for im in Image.objects.filter(project=project, flagged=False) if getattr(im, key) == value]
            assert strata[(key, value)] == (len(mine), sum(im.n_ratings for im in mine),
                                            sum(im.n_ratings >= 2 for im in mine))


def test_a_deleted_projects_tallies_go_with_it() -> None:
    project = make_project()
    for _ in range(3):
        make_image(project)
    assert ImageTally.objects.filter(project=project).exists()
    pk = project.pk
    Image.objects.filter(project=project).delete()
    project.delete()
    assert not ImageTally.objects.filter(project_id=pk).exists()


def test_the_tally_triggers_match_their_definitions() -> None:
    from annotation.db.postgres import TRIGGERS

    with connection.cursor() as cur:
        cur.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'annotation_image'::regclass AND NOT tgisinternal")
        names = {r[0] for r in cur.fetchall()}
    assert {"image_tally_insert", "image_tally_update", "image_tally_delete"} <= names
    assert {n for n, (table, _, _) in TRIGGERS.items() if table == "annotation_image"} <= names
