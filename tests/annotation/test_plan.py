"""The planner (annotation/agreement/planner.py): Spearman-Brown label reliability and the
interval width carried from the current design to others, checked against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import alpha_all, bootstrap_ci, planner
from annotation.agreement import ratermodel as rm


def test_spearman_brown_matches_the_documented_example():
    # docs/agreement.md: mean alpha 0.19, 4 ratings -> 0.48; about 10 for 0.7, 17 for 0.8.
    assert planner.spearman_brown(0.19, 4) == pytest.approx(0.4840, abs=1e-3)
    assert planner.ratings_needed(0.19, 0.7) == 10
    assert planner.ratings_needed(0.19, 0.8) == 18  # 17.05 rounds up: 17 ratings give 0.7996
    assert planner.spearman_brown(0.19, 17) < 0.8 <= planner.spearman_brown(0.19, 18)
    assert planner.ratings_needed(-0.05, 0.8) is None
    assert planner.ratings_needed(0.9, 0.8) == 1


def test_rows_cover_the_target_and_say_when_it_is_met():
    rows = planner.plan(mean_alpha=0.19, ci_width=0.1, images=2500, ratings_per_image=4, target_reliability=0.8)
    ks = [r.ratings_per_image for r in rows]
    assert ks[0] == 2 and ks[-1] >= 18
    first_met = next(r for r in rows if r.meets_target)
    assert first_met.ratings_per_image == 18
    widths = [r.alpha_ci_width for r in rows]
    assert all(a is not None and b is not None and a > b for a, b in zip(widths, widths[1:], strict=False))
    at_4 = next(r for r in rows if r.ratings_per_image == 4)
    assert at_4.alpha_ci_width == pytest.approx(0.1)  # the anchor reproduces itself


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"images": 1}, "at least 2 rated images"),
    ({"ratings_per_image": 1.0}, "must be above 1"),
    ({"target_reliability": 1.0}, "between 0 and 1"),
    ({"plan_images": 1}, "planned images must be at least 2"),
])
def test_bad_plans_are_refused(kwargs, message):
    args = {"mean_alpha": 0.2, "ci_width": 0.1, "images": 100, "ratings_per_image": 3.0} | kwargs
    with pytest.raises(ValueError, match=message):
        planner.plan(**args)


def _median_width(n: int, k: int, seed: int) -> tuple[float, float]:
    sim = rm.simulate_ratings(np.random.default_rng(seed), n_images=n, ratings_per_image=k, n_raters=8)
    ci = bootstrap_ci(sim.units, sim.values, domain=tuple(range(8)), n_boot=300, seed=1)
    alphas = [a.alpha for a in alpha_all(sim.units, None, sim.values, domain=tuple(range(8)))]
    widths = [hi - lo for lo, hi in ci if lo is not None and hi is not None]
    return float(np.median(widths)), float(np.mean([a for a in alphas if a is not None]))


def test_predicted_widths_match_simulated_designs():
    w0, a0 = _median_width(600, 4, seed=1)
    for n, k in [(600, 2), (600, 6), (1200, 4), (300, 8)]:
        rows = planner.plan(mean_alpha=a0, ci_width=w0, images=600, ratings_per_image=4, plan_images=n)
        predicted = next(r.alpha_ci_width for r in rows if r.ratings_per_image == k)
        actual = float(np.mean([_median_width(n, k, seed=s)[0] for s in (2, 3)]))
        assert predicted is not None
        assert 0.8 <= predicted / actual <= 1.25, (n, k, predicted, actual)
