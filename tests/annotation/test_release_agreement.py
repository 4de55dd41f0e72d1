"""A release shows alpha on all ratings beside alpha on its selection, the mean's interval for
experts like these and the consolidated label's reliability (issue #17)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accounts.models import Role
from annotation import agreement as ag
from annotation import selectors
from annotation.models import Rating
from annotation.services.raters import rater_exclude
from annotation.services.releases import release_build, release_create, release_dir
from tests.factories import add_member, make_project, make_user
from tests.support.seed import populate

pytestmark = pytest.mark.django_db


def test_release_card_puts_all_ratings_beside_the_selection():
    project = make_project(slug="sel")
    lead = make_user(Role.LEAD)
    raters = [make_user() for _ in range(5)]
    add_member(project, lead, *raters)
    populate(project, 120, raters, np.random.default_rng(3))
    # one rater answers at random: excluding them raises alpha on the released selection
    noisy = raters[0]
    rng = np.random.default_rng(4)
    for r in Rating.objects.filter(project=project, rater=noisy):
        r.values = [int(x) for x in rng.integers(0, 8, 40)]
        r.save(update_fields=["values"])
    rows = selectors.rating_rows(project)
    everything = [a.alpha for a in ag.alpha_all(rows.image_ids, None, rows.values, domain=ag.scale_domain(7))
                  if a.alpha is not None]
    rater_exclude(project=project, rater=noisy, actor=lead, reason="answers at random")
    release = release_build(release_create(project=project, version="1.0.0", n_boot=100, created_by=lead))
    assert release.status == "built"
    folder = release_dir(release)
    agreement = json.loads((folder / "release.json").read_text())["agreement"]
    assert agreement["mean_alpha_all_ratings"] == pytest.approx(np.mean(everything), abs=1e-6)
    assert agreement["mean_alpha"] > agreement["mean_alpha_all_ratings"] + 0.02
    lo, hi = agreement["mean_alpha_ci_raters"]
    assert lo < agreement["mean_alpha"] < hi
    k, r = agreement["label_reliability"]["ratings_per_image"], agreement["label_reliability"]["reliability"]
    a = agreement["mean_alpha"]
    assert k < 3 and r == pytest.approx(k * a / (1 + (k - 1) * a), abs=1e-4)  # the excluded rater's ratings are gone
    card = (folder / "README.md").read_text()
    assert "On all ratings, before this release's selection" in card and "for experts like these" in card
    assert "Reliability of the consolidated label" in card
