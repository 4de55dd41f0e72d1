"""annotation.batching (PURE): the stratified sample, pace and projection, with known answers."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import numpy as np
import pytest

from annotation.batching import PACE_DAYS, SampleError, pace_per_day, project_completion, stratified_sample


def test_sample_is_proportional_to_each_stratum_and_reproducible():
    rng = np.random.default_rng(7)
    ids = list(range(1, 1001))
    # strata of 500, 300, 150, 50 images
    strata = ["a"] * 500 + ["b"] * 300 + ["c"] * 150 + ["d"] * 50
    order = rng.permutation(len(ids))
    shuffled_ids = [ids[k] for k in order]
    shuffled_strata = [strata[k] for k in order]
    sample = stratified_sample(ids, strata, 100, seed=3)
    assert len(sample) == len(set(sample)) == 100
    by = dict(zip(ids, strata, strict=True))
    assert Counter(by[i] for i in sample) == {"a": 50, "b": 30, "c": 15, "d": 5}
    # the same pool in another order, the same seed: the same sample; another seed: another one
    assert stratified_sample(shuffled_ids, shuffled_strata, 100, seed=3) == sample
    assert stratified_sample(ids, strata, 100, seed=4) != sample


def test_sample_gives_the_last_places_by_largest_remainder():
    ids = list(range(10))
    strata = ["x"] * 5 + ["y"] * 3 + ["z"] * 2  # quotas for 4: 2.0, 1.2, 0.8
    sample = stratified_sample(ids, strata, 4, seed=0)
    counts = Counter(strata[i] for i in sample)
    assert counts == {"x": 2, "y": 1, "z": 1}


def test_sample_within_strata_is_uniform_over_seeds():
    """Simulation with known truth: each of a stratum's images is drawn with probability size/N."""
    ids = list(range(40))
    strata = ["a"] * 20 + ["b"] * 20
    hits = Counter()
    for seed in range(400):
        hits.update(stratified_sample(ids, strata, 10, seed=seed))
    # expected 400 * 10 / 40 = 100 per image; binomial sd about 8.7
    assert all(60 <= hits[i] <= 140 for i in ids), hits


@pytest.mark.parametrize("size", [0, 11])
def test_sample_refuses_a_size_out_of_range(size):
    with pytest.raises(SampleError, match=r"sample size .* out of range \(allowed: 1\.\.10"):
        stratified_sample(list(range(10)), ["a"] * 10, size, seed=0)


def test_pace_counts_the_last_days_or_since_opening():
    today = date(2026, 3, 10)
    per_day = {today - timedelta(days=k): 10 for k in range(20)}
    assert pace_per_day(per_day, today=today, opened_on=None) == 10.0
    assert pace_per_day(per_day, today=today, opened_on=today - timedelta(days=30)) == 10.0
    # opened two days ago: 3 days (two ago, yesterday, today)
    assert pace_per_day({today: 6, today - timedelta(days=1): 3}, today=today,
                        opened_on=today - timedelta(days=2)) == 3.0
    # only the window counts
    assert pace_per_day({today - timedelta(days=PACE_DAYS): 70}, today=today, opened_on=None) == 0.0


def test_projection_date_and_behind():
    today = date(2026, 3, 10)
    per_day = {today - timedelta(days=k): 20 for k in range(PACE_DAYS)}  # 20 a day
    p = project_completion(remaining=100, per_day=per_day, today=today, opened_on=None, due_on=date(2026, 3, 20))
    assert (p.pace_per_day, p.projected_on, p.behind) == (20.0, date(2026, 3, 15), False)
    p = project_completion(remaining=101, per_day=per_day, today=today, opened_on=None, due_on=date(2026, 3, 15))
    assert (p.projected_on, p.behind) == (date(2026, 3, 16), True)
    done = project_completion(remaining=0, per_day={}, today=today, opened_on=None, due_on=date(2026, 3, 1))
    assert (done.projected_on, done.behind) == (today, False)
    # no pace: no projection; behind only once the due day is here
    assert project_completion(remaining=5, per_day={}, today=today, opened_on=today, due_on=date(2026, 3, 11)).behind \
        is False
    assert project_completion(remaining=5, per_day={}, today=today, opened_on=today, due_on=today).behind is True
