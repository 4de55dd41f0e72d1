"""PURE: per-rater quality statistics (no Django). Definitions in docs/agreement.md terms.

- **Intra-rater reliability (test-retest).** A rater rated the same image twice (the original
  rating and an unannounced repeat). Per emotion, Krippendorff's alpha (interval) treating the two
  occasions as two "raters" of the same unit (the image), and the mean absolute change between
  the occasions.
- **Severity / leniency.** Per rater, the mean over co-rated images and emotions of (the rater's
  value minus the mean of the *other* raters on the same image and emotion). +1.0 means "rates
  everything one step higher than the others"; only images with at least one other rater count.
- **Scale use.** Per rater and emotion, how often each scale point was used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from annotation import agreement as ag
from annotation.agreement.prepare import _factorize
from annotation.agreement.quantiles import t_quantile

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RetestEmotion:
    """Test-retest figures of one rater on one emotion."""

    emotion: int
    n_pairs: int
    alpha: float | None  # None when undefined (fewer than 2 pairs, or no variation)
    reason: str | None
    mean_abs_change: float | None  # None without pairs


def retest_reliability(first: npt.ArrayLike, second: npt.ArrayLike, *, scale_max: int,
                       level: ag.Level = "interval") -> list[RetestEmotion]:
    """Intra-rater reliability per emotion from paired occasions.

    ``first`` and ``second`` have shape (n_pairs, n_emotions): row i holds the rater's values for
    the same image on the first and the second occasion. Returns one RetestEmotion per column.
    Raises ValueError when the shapes differ.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"first and second must have the same 2-D shape, got {a.shape} and {b.shape}")
    n, k = a.shape
    if n == 0:
        return [RetestEmotion(e, 0, None, ag.REASON_NO_PAIRABLE, None) for e in range(k)]
    units = np.concatenate([np.arange(n), np.arange(n)])
    occasions = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)])
    alphas = ag.alpha_all(units, occasions, np.concatenate([a, b]), level=level, domain=ag.scale_domain(scale_max))
    change = np.abs(a - b).mean(axis=0)
    return [RetestEmotion(emotion=e, n_pairs=n, alpha=r.alpha, reason=r.reason, mean_abs_change=float(change[e]))
            for e, r in enumerate(alphas)]


def _unit_codes(units: npt.NDArray[np.generic]) -> tuple[npt.NDArray[np.intp], int]:
    """Unit codes 0..K-1 in ascending id order (what ``np.unique(units, return_inverse=True)`` gives,
    in O(n) for compact integer ids) and K."""
    idx, ids = _factorize(units)
    return idx, int(ids.size)


def diff_from_others(units: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    """Per row and emotion: the row's value minus the mean of the other rows of the same unit
    (ignoring NaN); NaN where the value is missing or nobody else rated that unit and emotion."""
    u = np.asarray(units)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or len(u) != len(v):
        raise ValueError("units and values must have the same number of rows (values 2-D)")
    k = v.shape[1]
    if len(v) == 0:
        return np.zeros((0, k))
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]

    unit_idx, n_units = _unit_codes(u)
    # per-unit sums as one sparse product (units x rows indicator) instead of np.add.at
    ind = sp.csr_matrix((np.ones(len(v)), (unit_idx, np.arange(len(v)))), shape=(n_units, len(v)))
    if not np.isnan(v).any():
        # nothing missing (ratings from the database): the same numbers with a per-row count of others
        others_1d = (np.bincount(unit_idx, minlength=n_units) - 1.0)[unit_idx][:, None]
        # v - (sum - v) / others, the same operations in place (one table-sized array, not four)
        full: FloatArray = np.asarray(ind @ v)[unit_idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            full -= v
            full /= others_1d
            np.subtract(v, full, out=full)
        full[others_1d[:, 0] <= 0] = np.nan
        return full
    present = ~np.isnan(v)
    filled = np.where(present, v, 0.0)
    sums = np.asarray(ind @ filled)
    counts = np.asarray(ind @ present.astype(np.float64))
    others_n = counts[unit_idx] - present
    with np.errstate(invalid="ignore", divide="ignore"):
        others_mean = (sums[unit_idx] - filled) / others_n
    out: FloatArray = np.where(present & (others_n > 0), v - others_mean, np.nan)
    return out


def _given_diff(diff: FloatArray | None, units: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    if diff is None:
        return diff_from_others(units, values)
    d = np.asarray(diff, dtype=np.float64)
    if d.shape != np.shape(values):
        raise ValueError(f"diff must have the shape of values {np.shape(values)}, got {d.shape}")
    return d


@dataclass(frozen=True)
class Severity:
    """A rater's severity (< 0) or leniency (> 0) relative to the other raters."""

    rater: int
    severity: float | None  # mean (own value - mean of the others), over co-rated images and emotions
    n_images: int  # co-rated images (at least one other rater)
    per_emotion: tuple[float | None, ...]  # the same mean, per emotion


def severity(units: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike, *,
             diff: FloatArray | None = None) -> list[Severity]:
    """Severity / leniency of every rater, from a long table (one row per image and rater).

    ``values`` has shape (n_rows, n_emotions), NaN = missing. For each row, the others' mean is the
    mean of the other rows of the same unit (per emotion, ignoring NaN); rows of units rated by one
    rater only do not count. Raters are returned in ascending id order. ``diff``: the table's
    ``diff_from_others`` when the caller has it already (computed otherwise).
    """
    r = np.asarray(raters)
    diff = _given_diff(diff, units, values)
    if len(r) != len(diff):
        raise ValueError("units, raters and values must have the same number of rows (values 2-D)")
    rater_ids, r_idx = np.unique(r, return_inverse=True)
    # each rater's rows in table order (as diff[r == rid]), from one stable sort
    order = np.argsort(r_idx.reshape(-1), kind="stable")
    bounds = np.searchsorted(r_idx.reshape(-1)[order], np.arange(rater_ids.size + 1))
    out = []
    for i, rid in enumerate(rater_ids):
        rows = diff[order[bounds[i]:bounds[i + 1]]]
        valid = ~np.isnan(rows)
        # per emotion the same contiguous values as rows[valid[:, e], e], so the same means
        cols, vcols = np.ascontiguousarray(rows.T), np.ascontiguousarray(valid.T)
        per = tuple(float(c[ok].mean()) if ok.any() else None for c, ok in zip(cols, vcols, strict=True))
        out.append(Severity(rater=int(rid), severity=float(rows[valid].mean()) if valid.any() else None,
                            n_images=int(valid.any(axis=1).sum()), per_emotion=per))
    return out


def severity_and_deviation(units: npt.ArrayLike, raters: npt.ArrayLike,
                           values: npt.ArrayLike) -> tuple[list[Severity], FloatArray]:
    """``severity(units, raters, values)`` and ``relative_deviation(units, values)``, the same numbers
    bit for bit, without the (rows, emotions) float64 tables (values, diff, its absolute value:
    about 1 GB each at 3,000,000 ratings x 40 emotions, #21): for an integer table (ratings from the
    database: nothing missing) the per-unit sums are summed once and each rater's rows get their
    differences in turn; any other table takes the long way."""
    u = np.asarray(units)
    r = np.asarray(raters)
    v = np.asarray(values)
    if v.dtype.kind not in "iu" or v.ndim != 2 or len(u) != len(v) or len(r) != len(v) or len(v) == 0:
        fv = np.asarray(values, dtype=np.float64)
        diff = diff_from_others(u, fv)
        return severity(u, r, fv, diff=diff), relative_deviation(u, fv, diff=diff)
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]

    unit_idx, n_units = _unit_codes(u)
    n, k = v.shape
    # the per-unit sums diff_from_others takes (a float64 sparse product of integers: exact), and
    # per unit and emotion whether somebody marked it present, a chunk of rows at a time
    sums = np.zeros((n_units, k))
    present = np.zeros((n_units, k), dtype=bool)
    step = max(1, (1 << 20) // k)
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        # only the units of these rows (a short range: the rows come by unit), not a units-long product
        # per chunk (a million-row dense result for each of a hundred chunks at a million images, #21)
        lo, hi = int(unit_idx[r0:r1].min()), int(unit_idx[r0:r1].max()) + 1
        ind = sp.csr_matrix((np.ones(r1 - r0), (unit_idx[r0:r1] - lo, np.arange(r1 - r0))), shape=(hi - lo, r1 - r0))
        sums[lo:hi] += ind @ v[r0:r1].astype(np.float64)
        present[lo:hi] |= (ind @ (v[r0:r1] > 0).astype(np.float64)) > 0
    rows_per_unit = np.bincount(unit_idx, minlength=n_units)
    rater_ids, r_idx = np.unique(r, return_inverse=True)
    order = np.argsort(r_idx.reshape(-1), kind="stable")
    bounds = np.searchsorted(r_idx.reshape(-1)[order], np.arange(rater_ids.size + 1))
    dev_row = np.empty(n)
    out = []
    # a rater's rows a chunk at a time: temporaries of half a MB, reused, instead of a dozen
    # table-sized ones per rater (each a fresh mapping to fault in: most of the time at a million
    # images, #21); only the co-rated rows' differences are kept whole, for severity's means
    chunk = max(1, (1 << 16) // max(k, 1))
    for i, rid in enumerate(rater_ids):
        sel_all = order[bounds[i]:bounds[i + 1]]
        ui_all = unit_idx[sel_all]
        # a row is NaN whole (no other rater: severity leaves it out) or finite
        co_all = rows_per_unit[ui_all] > 1
        sub = np.empty((int(co_all.sum()), k))
        at = 0
        for c0 in range(0, sel_all.size, chunk):
            sel, ui, co = sel_all[c0:c0 + chunk], ui_all[c0:c0 + chunk], co_all[c0:c0 + chunk]
            vi = v[sel].astype(np.float64)
            # diff_from_others' operations on these rows: v - (sum - v) / others
            others = (rows_per_unit[ui] - 1.0)[:, None]
            every = bool(co.all())  # every row co-rated (the usual case): no row of NaN or inf
            rows = np.take(sums, ui, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                rows -= vi
                rows /= others
                np.subtract(vi, rows, out=rows)
            kept = rows if every else rows[co]
            sub[at:at + kept.shape[0]] = kept
            at += kept.shape[0]
            # relative_deviation's per-row deviation (a row's own cells only): |diff| on the cells,
            # 0.0 elsewhere; with every row finite a product with the cells (|d| * 1.0 is |d|, |d| * 0.0
            # is 0.0: the same numbers as a masked assignment, without its branch per cell)
            absdiff = np.abs(rows)
            if every:
                cells = present[ui]
                absdiff *= cells
            else:
                cells = present[ui] & co[:, None]
                absdiff[~cells] = 0.0
            n_cells = cells.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                dev_row[sel] = np.where(n_cells > 0, absdiff.sum(axis=1) / n_cells, np.nan)
        # severity's figures of this rater (its co-rated rows in table order, as there): the same
        # contiguous values for each mean as severity's masked ones
        cols = np.ascontiguousarray(sub.T)
        per = tuple(float(c.mean()) if c.size else None for c in cols)
        out.append(Severity(rater=int(rid), severity=float(sub.reshape(-1).mean()) if sub.size else None,
                            n_images=int(sub.shape[0]) if k else 0, per_emotion=per))
        del sub, cols
    return out, _relative_from_rows(unit_idx, n_units, dev_row)


def _relative_from_rows(unit_idx: npt.NDArray[np.intp], n_units: int, dev: FloatArray) -> FloatArray:
    """``relative_deviation``'s last step: each row's deviation minus the mean of its co-raters'."""
    rows_per_unit = np.bincount(unit_idx, minlength=n_units)
    ok = ~np.isnan(dev) & (rows_per_unit[unit_idx] >= 3)
    dsum = np.bincount(unit_idx[ok], weights=dev[ok], minlength=n_units)
    dcnt = np.bincount(unit_idx[ok], minlength=n_units).astype(np.float64)
    others = dcnt[unit_idx] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(ok & (others > 0), dev - (dsum[unit_idx] - np.where(ok, dev, 0.0)) / others,
                                   np.nan)
    return out


def scale_use(raters: npt.ArrayLike, values: npt.ArrayLike, *, scale_max: int) -> dict[int, list[list[int]]]:
    """Per rater: for each emotion, how many times each scale point 0..scale_max was given.

    ``values`` has shape (n_rows, n_emotions) of integers; off-scale or missing values are ignored.
    """
    r = np.asarray(raters)
    v = np.asarray(values)
    rater_ids, r_idx = np.unique(r, return_inverse=True)
    r_idx = r_idx.reshape(-1)
    if v.ndim != 2:
        return {int(rid): [] for rid in rater_ids}
    s = scale_max + 1
    n_r, n_e = int(rater_ids.size), v.shape[1]
    # one bincount of (rater, emotion, point) per block of rows (counts: exact in any order), on the
    # table as given: no transposed copy nor a pass per emotion (#21)
    counts = np.zeros(n_r * n_e * s, dtype=np.int64)
    cells = np.arange(n_e, dtype=np.int64) * s
    step = max(1, (1 << 20) // max(n_e, 1))
    for r0 in range(0, v.shape[0], step):
        vc = v[r0 : r0 + step]
        base = r_idx[r0 : r0 + step].astype(np.int64)[:, None] * (n_e * s) + cells
        if vc.dtype.kind in "iu" and vc.size and int(vc.min()) >= 0 and int(vc.max()) <= scale_max:
            # every value on the scale (ratings from the database): no masks to select them by (#21)
            key = (base + vc).ravel()
        else:
            ok = (vc >= 0) & (vc <= scale_max)  # NaN compares False: left out
            key = base[ok] + vc[ok].astype(np.int64)
        counts += np.bincount(key, minlength=n_r * n_e * s)
    counts = counts.reshape(n_r, n_e, s)
    return {int(rid): counts[i].tolist() for i, rid in enumerate(rater_ids)}


def mean_or_none(xs: Sequence[float | None]) -> float | None:
    """The mean of the defined values, or None when there are none."""
    defined = [x for x in xs if x is not None]
    return sum(defined) / len(defined) if defined else None


# --- drift and fatigue -------------------------------------------------------------------------

SITTING_GAP_SECONDS = 30 * 60


def sittings(times: Sequence[float] | npt.ArrayLike, *, gap_seconds: float = SITTING_GAP_SECONDS) -> list[int]:
    """The sitting (0, 1, ...) of each rating, from its time in seconds (ascending): a new sitting
    starts after a gap longer than `gap_seconds`."""
    return [int(x) for x in _sittings(np.asarray(times, dtype=np.float64), gap_seconds)]


def _sittings(t: FloatArray, gap_seconds: float) -> npt.NDArray[np.int64]:
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(np.diff(t) > gap_seconds)]).astype(np.int64)


@dataclass(frozen=True)
class Fatigue:
    """One rater's speed and agreement over time (seconds per image; deviation = mean absolute
    difference from the other raters' mean on the same image, lower = closer to the others)."""

    n_sittings: int
    early_seconds: float | None  # median, first half of each sitting (sittings of 4+ ratings)
    late_seconds: float | None  # median, second half
    early_deviation: float | None
    late_deviation: float | None
    usual_seconds: float | None  # median over all but the `recent` last ratings
    recent_seconds: float | None  # median of the `recent` last ratings


def _finite(xs: Sequence[float | None] | npt.ArrayLike) -> FloatArray:
    a = np.asarray([np.nan if x is None else x for x in xs] if isinstance(xs, list | tuple) else xs,
                   dtype=np.float64)
    return a[np.isfinite(a)]


def _median(xs: Sequence[float | None] | npt.ArrayLike) -> float | None:
    clean = _finite(xs)
    return float(np.median(clean)) if clean.size else None


def _mean(xs: Sequence[float | None] | npt.ArrayLike) -> float | None:
    clean = _finite(xs)
    return float(np.mean(clean)) if clean.size else None


def fatigue(times: Sequence[float] | npt.ArrayLike, seconds: Sequence[float] | npt.ArrayLike,
            deviation: Sequence[float] | npt.ArrayLike, *, gap_seconds: float = SITTING_GAP_SECONDS,
            recent: int = 50) -> Fatigue:
    """Early vs late within sittings and recent vs usual speed, for one rater's ratings in time order
    (`times` ascending, seconds since any origin; NaN marks a missing speed or deviation). Early =
    the first half of each sitting of 4 or more ratings, late = its last half (the middle rating of
    an odd sitting is in neither)."""
    t = np.asarray(times, dtype=np.float64)
    sec = np.asarray(seconds, dtype=np.float64)
    dev = np.asarray(deviation, dtype=np.float64)
    n = t.size
    if not (sec.size == dev.size == n):
        raise ValueError("times, seconds and deviation must have the same length")
    which = _sittings(t, gap_seconds)
    sizes = np.bincount(which) if n else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if n else sizes
    pos = np.arange(n) - starts[which]
    size = sizes[which]
    half = size // 2
    early = (size >= 4) & (pos < half)
    late = (size >= 4) & (pos >= size - half)
    usual_part = sec[:-recent] if n > recent else sec[:0]
    return Fatigue(
        n_sittings=int(which[-1]) + 1 if n else 0,
        early_seconds=_median(sec[early]), late_seconds=_median(sec[late]),
        early_deviation=_mean(dev[early]), late_deviation=_mean(dev[late]),
        usual_seconds=_median(usual_part), recent_seconds=_median(sec[-recent:]) if usual_part.size else None,
    )


@dataclass(frozen=True)
class AlertThresholds:
    min_kappa: float | None = None  # alert below this mean kappa with the other raters
    min_retest_alpha: float | None = None  # alert below this test-retest alpha
    speed_ratio: float = 0.5  # alert when recent time per image < ratio x usual


def rater_alerts(*, mean_kappa: float | None, retest_alpha: float | None, usual_seconds: float | None,
                 recent_seconds: float | None, thresholds: AlertThresholds) -> list[str]:
    """The reasons to look at a rater now, in words (empty: nothing to report)."""
    out = []
    if thresholds.min_kappa is not None and mean_kappa is not None and mean_kappa < thresholds.min_kappa:
        out.append(f"agreement with the others (mean kappa {mean_kappa:.2f}) is below {thresholds.min_kappa:.2f}")
    if (thresholds.min_retest_alpha is not None and retest_alpha is not None
            and retest_alpha < thresholds.min_retest_alpha):
        out.append(f"test-retest reliability (alpha {retest_alpha:.2f}) is below {thresholds.min_retest_alpha:.2f}")
    if (usual_seconds and recent_seconds is not None and thresholds.speed_ratio > 0
            and recent_seconds < thresholds.speed_ratio * usual_seconds):
        out.append(f"recent time per image ({recent_seconds:.0f} s) is far below their usual ({usual_seconds:.0f} s)")
    return out


def median_or_none(xs: Sequence[float] | npt.ArrayLike) -> float | None:
    """The median of the finite values, or None when there are none."""
    return _median(xs)


def mean_of_finite(xs: Sequence[float] | npt.ArrayLike) -> float | None:
    """The mean of the finite values, or None when there are none."""
    return _mean(xs)


@dataclass(frozen=True)
class Consistency:
    """How far a rater is from the others compared with how far the others are from each other.

    Per image with at least three raters, over the emotions somebody marked present there: the
    rater's mean |own value - mean of the others| minus the same figure of each other rater,
    averaged. ``estimate`` is the mean of that difference over the rater's images, in scale steps;
    0 = as close to the panel as its members are to each other, > 0 further. ``low``/``high`` is
    its 95% t-interval over images (``None`` with fewer than ``MIN_CONSISTENCY_IMAGES``).
    """

    rater: int
    n_images: int
    estimate: float | None
    low: float | None
    high: float | None


MIN_CONSISTENCY_IMAGES = 10


def consistency(units: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike,
                *, confidence: float = 0.95, deviation: FloatArray | None = None) -> list[Consistency]:
    """``Consistency`` of every rater (ascending id) from a long table (NaN = missing).

    Under exchangeable raters the difference has mean 0 exactly (each rater's distance to the
    others is compared with the others' distances on the same images), so an interval away from 0
    says this rater differs; one that contains 0 says only that no difference was detected.
    """
    u = np.asarray(units)
    r = np.asarray(raters)
    v = np.asarray(values)  # only its shape is read when the deviation is given (no float copy)
    if v.ndim != 2 or len(u) != len(v) or len(r) != len(v):
        raise ValueError("units, raters and values must have the same number of rows (values 2-D)")
    rater_ids = np.unique(r)
    if len(v) == 0:
        return [Consistency(int(x), 0, None, None, None) for x in rater_ids]
    d = relative_deviation(u, v) if deviation is None else np.asarray(deviation, dtype=np.float64)
    if d.shape != (len(v),):
        raise ValueError("deviation must hold one value per rating")
    out = []
    z = 1.0 - (1.0 - confidence) / 2.0
    for rid in rater_ids:
        x = d[(r == rid) & ~np.isnan(d)]
        n = int(x.size)
        if n < MIN_CONSISTENCY_IMAGES:
            out.append(Consistency(int(rid), n, float(x.mean()) if n else None, None, None))
            continue
        mean = float(x.mean())
        # scipy.special.stdtrit's value, without importing scipy (agreement.quantiles; #21)
        half = float(t_quantile(n - 1, z) * x.std(ddof=1) / np.sqrt(n))
        out.append(Consistency(int(rid), n, mean, mean - half, mean + half))
    return out


def relative_deviation(units: npt.ArrayLike, values: npt.ArrayLike, *, diff: FloatArray | None = None) -> FloatArray:
    """Per rating: its deviation from the other raters of the image minus the co-raters' own
    deviations on that image (see ``Consistency``). It compares raters on the *same* images, so it
    does not change when the queue serves harder or easier images; NaN for images with fewer than
    three ratings or no emotion marked present. ``diff``: the table's ``diff_from_others`` when the
    caller has it already."""
    u = np.asarray(units)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or len(u) != len(v):
        raise ValueError("units and values must have the same number of rows (values 2-D)")
    if len(v) == 0:
        return np.zeros(0)
    unit_idx, n_units = _unit_codes(u)
    k = v.shape[1]
    absdiff = np.abs(_given_diff(diff, u, v))
    # present[unit, e]: somebody marked e present on the unit (one bincount over the present cells)
    rows, cols = np.nonzero(v > 0)  # NaN > 0 is False: as np.nan_to_num(v) > 0, without the copy
    present = (np.bincount(unit_idx[rows] * k + cols, minlength=n_units * k) > 0).reshape(n_units, k)
    cells = present[unit_idx] & ~np.isnan(absdiff)
    n_cells = cells.sum(axis=1)
    absdiff[~cells] = 0.0  # in place: np.where(cells, absdiff, 0.0) without another table-sized array
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = np.where(n_cells > 0, absdiff.sum(axis=1) / n_cells, np.nan)
    return _relative_from_rows(unit_idx, n_units, dev)


def _present_keys(v: npt.NDArray[Any], unit_idx: npt.NDArray[np.intp], k: int) -> npt.NDArray[np.intp]:
    """``unit * k + emotion`` of every cell of ``v`` (rows of the units ``unit_idx``) above 0, row-major."""
    flat = np.flatnonzero(v > 0)  # NaN > 0 is False: as np.nan_to_num(v) > 0
    rr, cc = np.divmod(flat, k)
    keys: npt.NDArray[np.intp] = unit_idx[rr] * k + cc
    return keys


@dataclass(frozen=True)
class IntensityShift:
    """A rater's intensity shift on present emotions, adjusted for which images they rated.

    From the additive model value = cell effect (image x emotion) + rater effect + noise, fitted
    by least squares on the non-zero ratings of cells that two or more raters marked present.
    ``shift`` is the rater's effect minus the mean effect of the other raters: +1.0 = one step
    above the others when they too see the emotion. ``None`` without such cells.
    """

    rater: int
    shift: float | None
    n_cells: int


def intensity_shift(units: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike) -> list[IntensityShift]:
    """``IntensityShift`` of every rater (ascending id): the exact least-squares fit of the additive
    model on the cells in play. Eliminating the cell effects leaves the raters x raters normal
    equations ``(diag(n_r) - N' diag(1/n_c) N) b = sum_r (y - cell mean)`` (N: cells x raters
    counts), solved with the effects summing to 0."""
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]

    u = np.asarray(units)
    r = np.asarray(raters)
    v = np.asarray(values)
    if v.dtype.kind not in "iu":  # integer ratings are read as they are (no float copy of the table)
        v = v.astype(np.float64, copy=False)
    if v.ndim != 2 or len(u) != len(v) or len(r) != len(v):
        raise ValueError("units, raters and values must have the same number of rows (values 2-D)")
    rater_ids, r_idx = np.unique(r, return_inverse=True)
    n_r = int(rater_ids.size)
    if len(v) == 0:
        return [IntensityShift(int(x), None, 0) for x in rater_ids]
    unit_idx, n_units = _unit_codes(u)
    k = v.shape[1]
    n = len(v)
    # per (unit, emotion) cell: how many marked it present, a block of rows at a time (as one
    # bincount over the present ratings, without their (rows, cols) lists of the whole table)
    n_pos = np.zeros(n_units * k, dtype=np.int32)
    step = max(1, (1 << 20) // k)
    for r0 in range(0, n, step):
        # the present cells' flat keys (unit * k + emotion), counted over the chunk's range of units
        # (a short one: the rows come by unit) by a bincount instead of np.add.at (#21)
        keys = _present_keys(v[r0 : r0 + step], unit_idx[r0 : r0 + step], k)
        if keys.size:
            lo, hi = int(keys.min()), int(keys.max()) + 1
            if hi - lo > 4 * keys.size + (1 << 16):  # rows not by unit: a bincount over the range would be large
                np.add.at(n_pos, keys, np.int32(1))
                continue
            part = np.bincount(keys - lo)
            n_pos[lo : lo + part.size] += part.astype(np.int32, copy=False)
    in_play = n_pos >= 2
    del n_pos
    # the present ratings (row-major, as np.nonzero gives them) of cells marked present twice or more
    picked: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
    for r0 in range(0, n, step):
        flat = np.flatnonzero(v[r0 : r0 + step] > 0)  # NaN > 0 is False: as np.nan_to_num(v) > 0
        rr, cc = np.divmod(flat, k)
        keep = in_play[unit_idx[r0 + rr] * k + cc]
        picked.append((rr[keep] + r0, cc[keep]))
    in_play = in_play.reshape(n_units, k)
    rows = np.concatenate([p[0] for p in picked]) if picked else np.zeros(0, dtype=np.intp)
    cols = np.concatenate([p[1] for p in picked]) if picked else np.zeros(0, dtype=np.intp)
    del picked
    y = v[rows, cols].astype(np.float64)
    who = r_idx[rows]
    n_cells = np.bincount(who, minlength=n_r)
    if y.size == 0:
        return [IntensityShift(int(x), None, 0) for x in rater_ids]
    # the cells' ranks in ascending cell order (np.unique's inverse): the in-play cells of the units
    # before, plus those of the row before the column (a cumulative count per unit, int8 when it fits)
    per_unit = in_play.sum(axis=1, dtype=np.int64)
    before = np.cumsum(per_unit) - per_unit
    within = np.cumsum(in_play, axis=1, dtype=np.int8 if k < 127 else np.int64)
    ur = unit_idx[rows]
    c_code = before[ur] + within[ur, cols].astype(np.int64) - 1
    del within, in_play
    n_c = np.bincount(c_code).astype(np.float64)
    cell_mean = np.bincount(c_code, weights=y) / n_c
    r_n = n_cells.astype(np.float64)
    incidence = sp.csr_matrix((np.ones(y.size), (c_code, who)), shape=(n_c.size, n_r))
    m = (incidence.T @ sp.diags(1.0 / n_c) @ incidence).toarray()
    a = np.diag(r_n) - m
    rhs = np.bincount(who, weights=y - cell_mean[c_code], minlength=n_r)
    fitted = r_n > 0
    # the effects are identified up to a constant (per connected group of raters): fix their sum at 0
    a_ext = np.vstack([a[np.ix_(fitted, fitted)], np.ones((1, int(fitted.sum())))])
    b = np.zeros(n_r)
    b[fitted] = np.linalg.lstsq(a_ext, np.append(rhs[fitted], 0.0), rcond=None)[0]
    n_fit = int(fitted.sum())
    out = []
    for i, rid in enumerate(rater_ids):
        if not fitted[i] or n_fit < 2:
            out.append(IntensityShift(int(rid), None, int(n_cells[i])))
            continue
        others = (b[fitted].sum() - b[i]) / (n_fit - 1)
        out.append(IntensityShift(int(rid), float(b[i] - others), int(n_cells[i])))
    return out
