"""Demographic strata (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .bootstrap import _boot_plan, _check_boot_args, _make_strata, _run_bootstrap
from .constants import BoolArray, FloatArray, IntArray, Level
from .prepare import _as_1d, _as_values2d, _factorize
from .results import AlphaResult, StratumAlpha
from .twoway import two_way_intervals
from .units import (
    _alpha_from_stats,
    _hist_int_sums,
    _moment_results,
    _packed_int_sums,
    _prepare,
    _Prepared,
    _unit_stats,
    _UnitStats,
)

# A stratum's alpha is marked reliable when its 95% interval is at most this wide (about what 180
# images x 4 ratings give at alpha ~0.3; the review's simulations found 30 images far too few).
MAX_CI_WIDTH = 0.2
MIN_BOOT_FOR_WIDTH = 100


@dataclass(frozen=True)
class CodedLabels:
    """A row-aligned label array given as ``names[codes]`` without building it (what a database
    read gives: a few labels, one small code per row). ``snapshot_stats`` takes it wherever it takes
    a label array, with the same results: no per-row string array to build and sort (at 3,000,000
    ratings, three such sorts took seconds and the arrays hundreds of MB, #21)."""

    codes: npt.NDArray[np.integer]
    names: npt.NDArray[np.generic]

    def factorize(self) -> tuple[IntArray, npt.NDArray[np.generic]]:
        """``_factorize(names[codes])``: codes of the labels in use, in ascending label order."""
        names, inv = np.unique(self.names, return_inverse=True)
        codes = inv.reshape(-1)[self.codes]
        used = np.bincount(codes, minlength=names.size) > 0
        rank = np.cumsum(used, dtype=np.intp) - 1
        return rank[codes], names[used]


def _unit_labels(
    name: str, u: npt.NDArray[np.generic], unit_idx: IntArray, n_units: int, strata: npt.ArrayLike | CodedLabels
) -> tuple[IntArray, npt.NDArray[np.generic]]:
    """Per-unit stratum codes of a row-aligned label array that must be constant within a unit."""
    if isinstance(strata, CodedLabels):
        if strata.codes.ndim != 1 or strata.codes.size != u.size:
            raise ValueError(f"{name} has {strata.codes.size} entries but units has {u.size}")
        s_idx, s_ids = strata.factorize()
    else:
        s = _as_1d(name, strata)
        if s.size != u.size:
            raise ValueError(f"{name} has {s.size} entries but units has {u.size}")
        s_idx, s_ids = _factorize(s)
    first = np.full(n_units, -1, dtype=np.intp)
    first[unit_idx[::-1]] = s_idx[::-1]
    bad = np.flatnonzero(first[unit_idx] != s_idx)
    if bad.size:
        raise ValueError(
            f"{name} must be constant within a unit; unit {u[bad[0]].item()!r} has several labels"
        )
    return first, s_ids


def _subset_alpha(p: _Prepared, st: _UnitStats, keep: BoolArray) -> list[AlphaResult]:
    """Alpha of the units in ``keep``: the same numbers as preparing that subset on its own."""
    if st.kind == "moments":
        return _moment_results(p.level, _packed_int_sums(st, keep), p.dom.step**2)
    assert st.m is not None and st.counts is not None
    return _alpha_from_stats(p, _UnitStats("counts", m=st.m[keep], counts=[c[keep] for c in st.counts]))


def _dense_codes(st: _UnitStats) -> tuple[npt.NDArray[np.integer], IntArray] | None:
    """The packed codes in use, ascending, and a table renumbering them 0..n_used-1 (``lut[code]``):
    histograms over the renumbered codes are a few hundred bins per emotion instead of every code up
    to the largest (tens of thousands: a bin a cache miss at a million units). None where the codes
    are too many for it."""
    if st.kind != "moments" or st.packed is None or st.packed.size == 0:
        return None
    u = st.packed.shape[0]
    top = int(st.packed.max()) + 1
    if top > 4 * u + 4096:
        return None
    seen = np.zeros(top, dtype=bool)
    step = max(1, (1 << 20) // st.packed.shape[1])
    for u0 in range(0, u, step):  # a block of units at a time: no table-sized temporary
        seen[st.packed[u0 : u0 + step]] = True
    used = np.flatnonzero(seen)
    lut = np.zeros(top, dtype=np.int64)
    lut[used] = np.arange(used.size, dtype=np.int64)
    return lut, used


def _strata_alphas(p: _Prepared, st: _UnitStats,
                   keys: Sequence[tuple[IntArray, int]]) -> list[list[list[AlphaResult]] | None]:
    """Per key (labels, number of strata): ``_subset_alpha(p, st, labels == k)`` for every stratum k,
    from one histogram of (stratum, emotion, packed code) over the units (the same integers, so the
    same alphas), instead of a copy of the table and a histogram per stratum; the histograms of all
    keys filled in one pass over the codes, renumbered (``_dense_codes``). None for a key where the
    codes are too many for it."""
    dense = _dense_codes(st)
    if dense is None:
        return [None for _ in keys]
    assert st.packed is not None
    lut, used = dense
    u, e = st.packed.shape
    n_used = int(used.size)
    n_bins = [n * e * n_used for _, n in keys]
    hists = [np.zeros(b, dtype=np.int64) if b <= (1 << 26) else None for b in n_bins]
    offset = n_used * np.arange(e, dtype=np.int64)
    step = max(1, max(1 << 20, *n_bins) // e)
    for u0 in range(0, u, step):
        codes = lut[st.packed[u0 : u0 + step]] + offset
        for (labels, _), hist, b in zip(keys, hists, n_bins, strict=True):
            if hist is not None:
                base = labels[u0 : u0 + step].astype(np.int64)[:, None] * (e * n_used)
                hist += np.bincount((codes + base).ravel(), minlength=b)
    out: list[list[list[AlphaResult]] | None] = []
    for (_, n), hist in zip(keys, hists, strict=True):
        if hist is None:
            out.append(None)
            continue
        # back to bins by packed code (the codes not in use: empty)
        full = np.zeros((n, e, int(used[-1]) + 1), dtype=np.int64)
        full[:, :, used] = hist.reshape(n, e, n_used)
        out.append([_moment_results(p.level, _hist_int_sums(full[k], st.b1, st.b2), p.dom.step**2)
                    for k in range(n)])
    return out


def _strata_points(p: _Prepared, st: _UnitStats,
                   keys: Sequence[tuple[IntArray, npt.NDArray[np.generic]]]) -> list[list[list[AlphaResult]]]:
    """Per key, per stratum: the alphas of that stratum's units (no resamples)."""
    hist_based = _strata_alphas(p, st, [(labels, int(ids.size)) for labels, ids in keys]) if keys else []
    out = []
    for (labels, ids), by_stratum in zip(keys, hist_based, strict=True):
        out.append([by_stratum[k] if by_stratum is not None else _subset_alpha(p, st, labels == k)
                    for k in range(int(ids.size))])
    return out


def _strata_results(
    p: _Prepared,
    st: _UnitStats,
    keys: Sequence[tuple[IntArray, npt.NDArray[np.generic]]],
    *,
    n_boot: int,
    seed: int,
    confidence: float,
    min_units: int,
    want_main: bool,
    max_ci_width: float = 0.2,
    points: Callable[[], Sequence[list[list[AlphaResult]]]] | None = None,
) -> tuple[FloatArray | None, list[list[StratumAlpha]]]:
    """The bootstrap (main and every key's strata from one set of draws) and each key's rows;
    ``points``: gives ``_strata_points(p, st, keys)`` after the bootstrap (snapshot_stats: from a
    forked worker that computed them meanwhile)."""
    parts = [_make_strata(labels, int(ids.size)) for labels, ids in keys]
    main, reps = _run_bootstrap(p, _boot_plan(p, st), n_boot, seed, parts, want_main=want_main)
    out: list[list[StratumAlpha]] = []
    key_points = points() if points else _strata_points(p, st, keys)
    for (_, ids), key_reps, by_stratum in zip(keys, reps, key_points, strict=True):
        rows: list[StratumAlpha] = []
        for k, label in enumerate(ids.tolist()):
            point = by_stratum[k]
            cis, _ = two_way_intervals([a.alpha for a in point], key_reps[k], None, confidence)
            for e, res in enumerate(point):
                ci = cis[e]
                note = None
                if res.alpha is None:
                    note = res.reason
                elif ci.reason:
                    note = ci.reason
                elif res.n_units < min_units:
                    note = f"only {res.n_units} pairable images (fewer than {min_units}): not reliable"
                elif n_boot < MIN_BOOT_FOR_WIDTH:
                    note = f"only {n_boot} resamples: too few to judge the interval's width"
                else:
                    assert ci.low is not None and ci.high is not None
                    if ci.high - ci.low > max_ci_width:
                        note = (f"interval {ci.high - ci.low:.2f} wide (more than {max_ci_width:.2f}): "
                                f"not reliable")
                rows.append(StratumAlpha(e, label, res, ci.low, ci.high, note is None, note))
        out.append(rows)
    return main, out


def alpha_by_stratum(
    units: npt.ArrayLike,
    values2d: npt.ArrayLike,
    strata: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    min_units: int = 30,
    max_ci_width: float = 0.2,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    raters: npt.ArrayLike | None = None,
) -> list[StratumAlpha]:
    """Alpha and bootstrap interval per emotion within each stratum of a categorical unit key.

    ``strata`` is row-aligned (the label of each row's unit, e.g. its ethnicity) and must be
    constant within a unit. A stratum's result is ``reliable`` only when alpha is defined, its
    interval is given (most resamples defined) and no wider than ``max_ci_width``, it has at least
    ``min_units`` pairable units for that emotion, and at least MIN_BOOT_FOR_WIDTH resamples were
    drawn (fewer cannot tell a width). Ordered by stratum, then emotion.
    The interval is a bootstrap of the stratum's units taken from the overall resamples: replicate b
    is the stratum's alpha with resample b's weights on its units (so the number of its units drawn
    varies around its size); all strata and the overall alpha share one set of draws (see
    ``docs/agreement.md``, "Demographic strata").
    """
    _check_boot_args(n_boot, confidence)
    u = _as_1d("units", units)
    x = _as_values2d(values2d, u.size)
    unit_idx, unit_ids = _factorize(u)
    labels = _unit_labels("strata", u, unit_idx, int(unit_ids.size), strata)
    if raters is not None:
        r = _as_1d("raters", raters)
        if r.size != u.size:
            raise ValueError(f"raters has {r.size} entries but units has {u.size}")
    p = _prepare(u, x, level=level, domain=domain, raters=raters)
    _, res = _strata_results(
        p,
        _unit_stats(p),
        [labels],
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
        min_units=min_units,
        max_ci_width=max_ci_width,
        want_main=False,
    )
    return res[0]
