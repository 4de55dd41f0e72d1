"""PURE: the arithmetic of batches (rounds): a stratified random sample, pace and projection.

No Django here (tests/test_import_contracts.py). Definitions shown to leads are in docs/agreement.md
("Rounds").
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

# Days of ratings the pace is measured over (fewer while a batch is younger).
PACE_DAYS = 7


class SampleError(ValueError):
    """A sample that cannot be drawn as asked; the message names the problem."""


def stratified_sample(ids: Sequence[int], strata: Sequence[Hashable], size: int, *, seed: int) -> list[int]:
    """`size` of `ids`, drawn at random within strata in proportion to each stratum's share of the
    pool (largest remainders decide the last places, ties by stratum order), sorted by id.

    Reproducible: the same pool (in any order), strata, size and seed give the same sample, because
    the pool is sorted by id before the seeded draw. Raises SampleError when `size` is not in
    1..len(ids) or the lengths differ.
    """
    if len(ids) != len(strata):
        raise SampleError(f"{len(ids)} ids but {len(strata)} stratum labels")
    if not 1 <= size <= len(ids):
        raise SampleError(f"sample size {size} out of range (allowed: 1..{len(ids)}, the images that fit)")
    order = sorted(range(len(ids)), key=lambda k: ids[k])
    groups: dict[str, list[int]] = {}
    for k in order:
        groups.setdefault(repr(strata[k]), []).append(int(ids[k]))
    keys = sorted(groups)
    total = len(ids)
    quotas = {key: size * len(groups[key]) / total for key in keys}
    taken = {key: math.floor(quotas[key]) for key in keys}
    left = size - sum(taken.values())
    for key in sorted(keys, key=lambda k: (-(quotas[k] - taken[k]), keys.index(k)))[:left]:
        taken[key] += 1
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for key in keys:
        pool = groups[key]
        if taken[key]:
            picks = rng.choice(len(pool), size=taken[key], replace=False)
            chosen.extend(pool[int(p)] for p in picks)
    return sorted(chosen)


@dataclass(frozen=True)
class Projection:
    """A batch's pace and where it leads (docs/agreement.md, "Rounds")."""

    remaining: int  # ratings still needed to reach the target on every image
    pace_per_day: float  # ratings per day over the last PACE_DAYS days (or since opening)
    projected_on: date | None  # today when done; None while there is no pace
    behind: bool  # a due date set, not done, and projected after it (without a pace: the day is here)


def pace_per_day(per_day: Mapping[date, int], *, today: date, opened_on: date | None) -> float:
    """Ratings per day over the last PACE_DAYS days up to and including today, or over the days
    since `opened_on` when that is shorter (at least one day)."""
    start = today - timedelta(days=PACE_DAYS - 1)
    if opened_on is not None and opened_on > start:
        start = min(opened_on, today)
    days = (today - start).days + 1
    return sum(n for d, n in per_day.items() if start <= d <= today) / days


def project_completion(*, remaining: int, per_day: Mapping[date, int], today: date, opened_on: date | None,
                       due_on: date | None) -> Projection:
    """When a batch reaches its target at its current pace: today when nothing remains, None when
    there is no pace yet; `behind` when it has a due date it will miss (or has missed)."""
    pace = pace_per_day(per_day, today=today, opened_on=opened_on)
    if remaining <= 0:
        return Projection(0, pace, today, False)
    projected = today + timedelta(days=math.ceil(remaining / pace)) if pace > 0 else None
    behind = due_on is not None and (projected > due_on if projected is not None else today >= due_on)
    return Projection(remaining, pace, projected, behind)
