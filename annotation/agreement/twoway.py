"""Intervals that include rater sampling, and undefined resamples said out loud (part of
annotation.agreement; contracts in its docstring).

The image bootstrap treats the recruited experts as fixed: its interval answers "how would alpha
vary over new images rated by *these* experts". ``two_way_intervals`` widens it by the
delete-one-rater jackknife variance of alpha (the exact leave-one-rater-out alphas the engine
already computes), so that it also answers "experts like these". docs/agreement.md states the
formula; tests/annotation/test_agreement_intervals.py checks its coverage by simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .constants import FloatArray
from .quantiles import normal_quantile

# An interval is withheld when more than this share of its resamples gave no alpha. A resample is
# undefined when it drew none of the images whose ratings vary; with k such images that happens
# in about exp(-k) of the resamples, so even a single such image leaves only ~37% undefined and
# "most" is never reached. 5% means alpha rests on about three images: the percentiles of such
# resamples are degenerate (often zero width), so the interval is withheld.
MAX_UNDEFINED_SHARE = 0.05
REASON_MOSTLY_UNDEFINED = (
    "interval withheld: alpha was undefined in {n} of {b} resamples (more than {share:.0%}), so it rests on "
    "a handful of images"
)
REASON_TOO_FEW_RATERS = "no rater interval: needs alpha without each rater, defined, for at least 3 raters"
REASON_NO_RATERS = "no rater interval: the raters were not given"


@dataclass(frozen=True)
class Interval:
    """One interval with its bookkeeping.

    ``low``/``high`` are ``None`` exactly when ``reason`` is set. ``n_undefined`` counts the
    resamples in which alpha was undefined (left out of the percentiles). ``rater_se`` is the
    delete-one-rater jackknife standard error (``None`` for an image-only interval).
    """

    low: float | None
    high: float | None
    n_undefined: int
    rater_se: float | None
    reason: str | None


def jackknife_se(loo: FloatArray) -> FloatArray:
    """Delete-one-rater jackknife standard error per column of ``loo`` (raters x statistics).

    ``sqrt((R-1)/R * sum_r (a_(-r) - mean)^2)``; NaN for a column with fewer than 3 defined
    values or any undefined value (a rater whose removal leaves alpha undefined)."""
    x = np.asarray(loo, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    r = x.shape[0]
    out = np.full(x.shape[1], np.nan)
    if r < 3:
        return out
    ok = ~np.isnan(x).any(axis=0)
    if ok.any():
        xs = x[:, ok]
        out[ok] = np.sqrt((r - 1) / r * ((xs - xs.mean(axis=0)) ** 2).sum(axis=0))
    return out


def _quantiles(col: FloatArray, confidence: float) -> tuple[float, float, float]:
    lo_q, hi_q = (1.0 - confidence) / 2.0, 1.0 - (1.0 - confidence) / 2.0
    lo, mid, hi = np.quantile(col, [lo_q, 0.5, hi_q])
    return float(lo), float(mid), float(hi)


def two_way_intervals(
    point: Sequence[float | None],
    reps: FloatArray,
    loo: FloatArray | None,
    confidence: float,
    *,
    max_undefined_share: float = MAX_UNDEFINED_SHARE,
) -> tuple[list[Interval], list[Interval]]:
    """(image-only, two-way) interval per column, from bootstrap replicates and leave-one-out values.

    ``point``: the estimate per column (``None`` = undefined); ``reps``: (B, columns) image
    bootstrap replicates, NaN = undefined; ``loo``: (raters, columns) the statistic without each
    rater, or ``None``.

    - Image-only: the percentile interval of the defined replicates, withheld (with a reason)
      when more than ``max_undefined_share`` of them are undefined.
    - Two-way: each side of the percentile interval is pushed outward so that its half-width
      ``w`` (from the replicates' median) becomes ``sqrt(w^2 + (z * se_r)^2)``, with ``se_r``
      the delete-one-rater jackknife standard error and ``z`` the normal quantile: the image and
      rater variances add, and the bootstrap's asymmetry is kept. The upper end stays <= 1.
    """
    r = np.asarray(reps, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    b = r.shape[0]
    se = jackknife_se(loo) if loo is not None else np.full(r.shape[1], np.nan)
    z = normal_quantile(1.0 - (1.0 - confidence) / 2.0)  # scipy.special.ndtri's value (no scipy import)
    image: list[Interval] = []
    both: list[Interval] = []
    # the columns without an undefined resample: their percentiles in one call (np.quantile along an
    # axis computes each column exactly as on its own)
    undefined = np.isnan(r).sum(axis=0)
    full = [j for j, a in enumerate(point) if a is not None and undefined[j] == 0 and b > 0]
    batch: dict[int, tuple[float, float, float]] = {}
    if full:
        lo_q, hi_q = (1.0 - confidence) / 2.0, 1.0 - (1.0 - confidence) / 2.0
        qs = np.quantile(r[:, full], [lo_q, 0.5, hi_q], axis=0)
        batch = {j: (float(qs[0, i]), float(qs[1, i]), float(qs[2, i])) for i, j in enumerate(full)}
    for j, a in enumerate(point):
        col = r[:, j]
        defined = col if j in batch else col[~np.isnan(col)]
        n_undef = int(b - defined.size)
        if a is None:
            image.append(Interval(None, None, n_undef, None, "alpha is undefined"))
            both.append(Interval(None, None, n_undef, None, "alpha is undefined"))
            continue
        if defined.size == 0 or n_undef > max_undefined_share * b:
            reason = REASON_MOSTLY_UNDEFINED.format(n=n_undef, b=b, share=max_undefined_share)
            image.append(Interval(None, None, n_undef, None, reason))
            both.append(Interval(None, None, n_undef, None, reason))
            continue
        lo, mid, hi = batch[j] if j in batch else _quantiles(defined, confidence)
        image.append(Interval(lo, hi, n_undef, None, None))
        s = float(se[j])
        if loo is None:
            both.append(Interval(None, None, n_undef, None, REASON_NO_RATERS))
        elif np.isnan(s):
            both.append(Interval(None, None, n_undef, None, REASON_TOO_FEW_RATERS))
        else:
            w_lo, w_hi = max(mid - lo, 0.0), max(hi - mid, 0.0)
            extra = (z * s) ** 2
            low = lo - (np.sqrt(w_lo**2 + extra) - w_lo)
            high = min(1.0, hi + (np.sqrt(w_hi**2 + extra) - w_hi))
            both.append(Interval(float(low), float(high), n_undef, s, None))
    return image, both


def mean_columns(values: FloatArray, columns: Sequence[int]) -> FloatArray:
    """Row-wise mean over ``columns`` ignoring NaN (NaN when none is defined), without warnings."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    sub = x[:, list(columns)]
    ok = ~np.isnan(sub)
    n = ok.sum(axis=1)
    tot = np.where(ok, sub, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, tot / np.maximum(n, 1), np.nan)


@dataclass(frozen=True)
class MeanAlpha:
    """The mean alpha over the emotions whose alpha is defined, with both intervals."""

    estimate: float | None
    n_emotions: int
    image: Interval
    two_way: Interval


def mean_alpha_interval(
    point: Sequence[float | None],
    reps: FloatArray,
    loo: FloatArray | None,
    confidence: float,
) -> MeanAlpha:
    """Mean alpha over the defined emotions; each resample (and each leave-one-rater-out table)
    averages the same emotions, skipping any that are undefined in it."""
    cols = [j for j, a in enumerate(point) if a is not None]
    if not cols:
        none = Interval(None, None, 0, None, "no emotion has a defined alpha")
        return MeanAlpha(None, 0, none, none)
    est = float(np.mean([point[j] for j in cols]))
    rep_mean = mean_columns(np.asarray(reps, dtype=np.float64), cols)[:, None]
    loo_mean = mean_columns(loo, cols)[:, None] if loo is not None and np.asarray(loo).size else None
    image, both = two_way_intervals([est], rep_mean, loo_mean, confidence)
    return MeanAlpha(est, len(cols), image[0], both[0])


def spearman_brown(reliability: float | None, k: float) -> float | None:
    """Reliability of the mean of ``k`` ratings from the reliability of one rating:
    ``k r / (1 + (k - 1) r)``; ``None`` when undefined (no r, k < 1, or a non-positive denominator)."""
    if reliability is None or k < 1:
        return None
    den = 1.0 + (k - 1.0) * reliability
    if den <= 0:
        return None
    return float(k * reliability / den)
