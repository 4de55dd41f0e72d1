"""The benchmarks' bulk seeding (bench/_setup.py) writes the counters the triggers would have kept
(it turns the counting triggers off while it inserts, #21): the same state, checked two ways."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from annotation.models import Image, Project, RaterTally, Rating
from annotation.selectors_dashboard import image_tally

pytestmark = pytest.mark.django_db


def _setup_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_setup", Path(__file__).resolve().parent.parent / "bench"
                                                  / "_setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seeded_projects_hold_the_counters_the_triggers_keep() -> None:
    setup = _setup_module()
    project = Project.objects.get(pk=setup.seed_ratings(300, 3, n_raters=7, seed=5))
    assert setup.seed_check(project.pk) == []
    per_image = Counter(Rating.objects.filter(project=project).values_list("image_id", flat=True))
    assert set(per_image.values()) == {3} and len(per_image) == 300
    assert all(im.n_ratings == 3 and not im.queue_full for im in Image.objects.filter(project=project))
    per_rater = Counter(Rating.objects.filter(project=project).values_list("rater_id", flat=True))
    assert dict(RaterTally.objects.filter(project=project).values_list("rater_id", "n_rated")) == dict(per_rater)
    assert sum(r.images for r in image_tally(project)[0] if r.n_ratings == 3) == 300
    # the triggers are back on: a new rating counts
    image = Image.objects.filter(project=project).first()
    assert image is not None
    rater = RaterTally.objects.filter(project=project).exclude(
        rater_id__in=Rating.objects.filter(image=image).values("rater_id")).first()
    assert rater is not None
    Rating.objects.create(project=project, image=image, rater_id=rater.rater_id, values=[0] * 40, scale_max=7,
                          taxonomy_version=project.taxonomy_version)
    image.refresh_from_db()
    assert image.n_ratings == 4 and image.queue_full and setup.seed_check(project.pk) == []


def _keys_and_indexes(tables: tuple[str, ...]) -> set[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                    "WHERE indrelid = ANY(%s::regclass[])", [list(tables)])
        found = set(cur.fetchall())
        cur.execute("SELECT conname, pg_get_constraintdef(oid) || ' ' || convalidated::text FROM pg_constraint "
                    "WHERE conrelid = ANY(%s::regclass[])", [list(tables)])
        return found | set(cur.fetchall())


def test_seeding_puts_back_every_index_and_key_and_they_hold() -> None:
    from django.db import IntegrityError, transaction

    setup = _setup_module()
    tables = ("annotation_image", "annotation_rating")
    before = _keys_and_indexes(tables)
    assert any("FOREIGN KEY" in d for _, d in before) and any("rating_one_per_rater_image" == n for n, _ in before)
    project = Project.objects.get(pk=setup.seed_ratings(200, 3, n_raters=5, seed=7))
    assert _keys_and_indexes(tables) == before
    # the keys made again are in force: a duplicate rating and a rating of a missing image are refused
    rating = Rating.objects.filter(project=project).first()
    assert rating is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(project=project, image_id=rating.image_id, rater_id=rating.rater_id, values=[0] * 40,
                              scale_max=7, taxonomy_version=project.taxonomy_version)
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(project=project, image_id=10**12, rater_id=rating.rater_id, values=[0] * 40,
                              scale_max=7, taxonomy_version=project.taxonomy_version)
        from django.db import connection

        connection.check_constraints()


def test_a_failed_seeding_leaves_the_tables_as_they_were(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import DatabaseError

    setup = _setup_module()
    tables = ("annotation_image", "annotation_rating")
    before = _keys_and_indexes(tables)
    # fails after the indexes and keys were dropped and the images inserted
    monkeypatch.setattr(setup, "_COUNTING_TRIGGERS", ("rating_counts_image", "no_such_trigger"))
    n_images = Image.objects.count()
    with pytest.raises(DatabaseError, match="no_such_trigger"):
        setup.seed_ratings(50, 3, n_raters=4, seed=9)
    assert _keys_and_indexes(tables) == before
    assert Image.objects.count() == n_images
