"""Zero inflation and the whole report (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .bootstrap import _boot_plan, _bootstrap, _check_boot_args, _run_bootstrap
from .constants import FloatArray, Level
from .kappa import _loo_alphas, loo_matrix
from .prepare import _as_1d, _check_duplicates
from .results import AlphaResult, EmotionAgreement, NonzeroShare
from .twoway import MeanAlpha, mean_alpha_interval, two_way_intervals
from .units import _alpha_from_stats, _prepare, _Prepared, _unit_stats, _UnitStats
from .zero_inflation import ZeroInflation, zero_inflation


def nonzero_shares(
    values2d: npt.ArrayLike, *, min_nonzero: int = 30, min_share: float = 0.05
) -> list[NonzeroShare]:
    """Share of non-zero ratings per emotion among non-missing ratings.

    The warning is set when fewer than ``min_nonzero`` ratings are non-zero or the non-zero
    share is below ``min_share``: alpha then rests on very few non-zero ratings.
    """
    x = np.asarray(values2d)
    if x.dtype.kind not in "iu":
        x = x.astype(np.float64, copy=False)
    if x.ndim == 1:
        x = x[:, None]
    # counted a chunk of rows at a time, on the table as given: no float64 copy nor full-size masks;
    # chunks of about a million values (with chunks of 102 rows the calls' overhead was most of the
    # time: 1 s at a million images, #21)
    n_rated = np.zeros(x.shape[1], dtype=np.int64)
    n_nz = np.zeros(x.shape[1], dtype=np.int64)
    step = max(1, (1 << 20) // max(x.shape[1], 1))
    for r0 in range(0, x.shape[0], step):
        r1 = min(r0 + step, x.shape[0])
        xc = x[r0:r1]
        if x.dtype.kind in "iu":  # integers: never missing
            n_rated += xc.shape[0]
            n_nz += np.count_nonzero(xc, axis=0)
        else:
            has = ~np.isnan(xc)
            n_rated += np.count_nonzero(has, axis=0)
            n_nz += np.count_nonzero(has & (xc != 0), axis=0)
    out: list[NonzeroShare] = []
    for j in range(x.shape[1]):
        nr, nz = int(n_rated[j]), int(n_nz[j])
        share = nz / nr if nr else None
        warning = None
        if share is None or nz < min_nonzero or share < min_share:
            shown = "n/a" if share is None else f"{share:.1%}"
            warning = (
                f"alpha rests on few non-zero ratings: {nz} of {nr} ratings are non-zero ({shown}); "
                f"at least {min_nonzero} and {min_share:.0%} are needed to read it as reliable"
            )
        out.append(NonzeroShare(j, nr, nz, share, warning))
    return out


def agreement_report(
    units: npt.ArrayLike,
    raters: npt.ArrayLike | None,
    values2d: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_nonzero: int = 30,
    min_nonzero_share: float = 0.05,
) -> list[EmotionAgreement]:
    """Alpha, bootstrap intervals and zero-inflation figures for every emotion in one call.

    With ``raters`` the rows also carry the interval that includes rater sampling
    (``ci_raters_*``, see annotation.agreement.twoway); without, its reason says why it is absent.
    """
    _check_boot_args(n_boot, confidence)
    p = _prepare(units, values2d, level=level, domain=domain, raters=raters)
    st = _unit_stats(p)
    point = _alpha_from_stats(p, st)
    reps = _bootstrap(p, st, n_boot, seed)
    loo = None
    if raters is not None:
        rater_idx, rater_ids = _check_duplicates(p.unit_idx, p.unit_ids, _as_1d("raters", raters))
        loo = loo_matrix(_loo_alphas(p, st, rater_idx, int(rater_ids.size)))
    return _report_rows(p, point, reps, n_boot, confidence, min_nonzero, min_nonzero_share, loo, st)


def _report_shares(p: _Prepared, st: _UnitStats | None, min_nonzero: int,
                   min_nonzero_share: float) -> tuple[list[NonzeroShare], list[ZeroInflation]]:
    """The parts of the report's rows that need no resamples: nonzero shares and zero inflation."""
    return nonzero_shares(p.x, min_nonzero=min_nonzero, min_share=min_nonzero_share), zero_inflation(p, st)


def _report_rows(
    p: _Prepared,
    point: list[AlphaResult],
    reps: FloatArray,
    n_boot: int,
    confidence: float,
    min_nonzero: int,
    min_nonzero_share: float,
    loo: FloatArray | None = None,
    st: _UnitStats | None = None,
    shares_zi: tuple[list[NonzeroShare], list[ZeroInflation]] | None = None,
) -> list[EmotionAgreement]:
    """The report's rows; ``shares_zi``: ``_report_shares(p, st, min_nonzero, min_nonzero_share)``
    when computed already (snapshot_stats computes it in a forked worker)."""
    image, both = two_way_intervals([a.alpha for a in point], reps, loo, confidence)
    nz, zi = shares_zi or _report_shares(p, st, min_nonzero, min_nonzero_share)
    out: list[EmotionAgreement] = []
    for j, res in enumerate(point):
        ci, ci2 = image[j], both[j]
        withheld = ci.reason if res.alpha is not None and ci.reason else None
        warnings = tuple(w for w in (res.reason, nz[j].warning, withheld) if w)
        out.append(
            EmotionAgreement(
                j, res, ci.low, ci.high, confidence, n_boot, nz[j], warnings,
                ci_raters_low=ci2.low, ci_raters_high=ci2.high,
                ci_raters_reason=ci2.reason if res.alpha is not None else None,
                n_boot_undefined=ci.n_undefined, ci_reason=withheld,
                presence_alpha=zi[j].presence, intensity_alpha=zi[j].intensity, ac2=zi[j].ac2,
            )
        )
    return out


def report_mean_alpha(
    point: list[AlphaResult], reps: FloatArray, loo: FloatArray | None, confidence: float
) -> MeanAlpha:
    """The mean alpha over the defined emotions with its image-only and two-way intervals."""
    return mean_alpha_interval([a.alpha for a in point], reps, loo, confidence)


def agreement_report_with_mean(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    values2d: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[list[EmotionAgreement], MeanAlpha, float | None]:
    """``agreement_report`` (with raters) plus the mean alpha with its intervals and the mean number
    of ratings per pairable image and emotion (the k of the label's Spearman-Brown reliability)."""
    from .zero_inflation import ratings_per_unit

    _check_boot_args(n_boot, confidence)
    p = _prepare(units, values2d, level=level, domain=domain, raters=raters)
    st = _unit_stats(p)
    point = _alpha_from_stats(p, st)
    # Everything that needs the per-unit statistics first (the same pure functions of the same
    # inputs, so the same numbers), then the bootstrap without them: its weight buffers and draws
    # take the place of the per-unit tables instead of adding to them (a release runs this in a
    # forked child beside its writing, and the two must stay under its memory budget, #21).
    rater_idx, rater_ids = _check_duplicates(p.unit_idx, p.unit_ids, _as_1d("raters", raters))
    loo = loo_matrix(_loo_alphas(p, st, rater_idx, int(rater_ids.size)))
    del rater_idx
    shares_zi = _report_shares(p, st, 30, 0.05)
    per_unit = ratings_per_unit(p, st)
    plan = _boot_plan(p, st)
    del st
    reps, _ = _run_bootstrap(p, plan, n_boot, seed)
    del plan
    assert reps is not None
    rows = _report_rows(p, point, reps, n_boot, confidence, 30, 0.05, loo, None, shares_zi)
    return rows, report_mean_alpha(point, reps, loo, confidence), per_unit
