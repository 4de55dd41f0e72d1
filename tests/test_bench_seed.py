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
