"""Zero inflation and the whole report (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .bootstrap import _bootstrap, _check_boot_args, _percentile_ci
from .constants import FloatArray, Level
from .results import AlphaResult, EmotionAgreement, NonzeroShare
from .units import _alpha_from_stats, _prepare, _Prepared, _unit_stats


def nonzero_shares(
    values2d: npt.ArrayLike, *, min_nonzero: int = 30, min_share: float = 0.05
) -> list[NonzeroShare]:
    """Share of non-zero ratings per emotion among non-missing ratings.

    The warning is set when fewer than ``min_nonzero`` ratings are non-zero or the non-zero
    share is below ``min_share``: alpha then rests on very few non-zero ratings.
    """
    x = np.asarray(values2d, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n_rated = np.count_nonzero(~np.isnan(x), axis=0)
    n_nz = np.count_nonzero(~np.isnan(x) & (x != 0), axis=0)
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
    """Alpha, bootstrap interval and zero-inflation check for every emotion in one call."""
    _check_boot_args(n_boot, confidence)
    p = _prepare(units, values2d, level=level, domain=domain, raters=raters)
    st = _unit_stats(p)
    point = _alpha_from_stats(p, st)
    reps = _bootstrap(p, st, n_boot, seed)
    return _report_rows(p, point, reps, n_boot, confidence, min_nonzero, min_nonzero_share)


def _report_rows(
    p: _Prepared,
    point: list[AlphaResult],
    reps: FloatArray,
    n_boot: int,
    confidence: float,
    min_nonzero: int,
    min_nonzero_share: float,
) -> list[EmotionAgreement]:
    cis = _percentile_ci(reps, point, confidence)
    nz = nonzero_shares(p.x, min_nonzero=min_nonzero, min_share=min_nonzero_share)
    out: list[EmotionAgreement] = []
    for j, res in enumerate(point):
        warnings = tuple(w for w in (res.reason, nz[j].warning) if w)
        out.append(EmotionAgreement(j, res, cis[j][0], cis[j][1], confidence, n_boot, nz[j], warnings))
    return out
