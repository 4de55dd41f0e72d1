"""Zero inflation said out loud: presence and intensity agreement, and Gwet's AC2 (part of
annotation.agreement; contracts in its docstring).

Most ratings are 0 ("not present"), so one alpha mixes two questions: do the experts agree
*whether* an emotion is present, and, when they both see it, *how strongly*. docs/agreement.md
("Zero inflation") defines the three figures computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import IntArray
from .results import AlphaResult
from .units import _alpha_from_stats, _prepare, _Prepared, _unit_stats


@dataclass(frozen=True)
class ZeroInflation:
    """Per emotion: alpha on present/absent, alpha on the intensities of co-present ratings, AC2."""

    emotion: int
    presence: AlphaResult
    intensity: AlphaResult
    ac2: float | None


def presence_alphas(p: _Prepared) -> list[AlphaResult]:
    """Alpha on present (value != 0) vs absent per emotion. On two values the interval metric
    (c - k)^2 equals the nominal one, so this is nominal alpha, computed on the fast route."""
    pres = np.where(np.isnan(p.x), np.nan, (p.x != 0).astype(np.float64))
    q = _prepare(p.unit_idx, pres, level="interval", domain=(0.0, 1.0), raters=None)
    return _alpha_from_stats(q, _unit_stats(q))


def intensity_alphas(p: _Prepared) -> list[AlphaResult]:
    """Alpha (at the table's level) on the non-zero ratings only. An image enters an emotion's
    figure when at least two raters marked that emotion present; its zeros are left out."""
    vals = p.dom.values
    dom = vals[vals != 0]
    if dom.size == 0:
        dom = vals
    x = np.where(p.x == 0, np.nan, p.x)
    q = _prepare(p.unit_idx, x, level=p.level, domain=dom.tolist(), raters=None)
    return _alpha_from_stats(q, _unit_stats(q))


def gwet_ac2(unit_idx: IntArray, n_units: int, codes: np.ndarray, n_categories: int) -> list[float | None]:
    """Gwet's AC2 with quadratic weights per column of ``codes`` (domain indices 0..q-1, -1 missing).

    With weights ``w_kl = 1 - (k - l)^2 / (q - 1)^2``, ``r_ik`` the ratings of unit i in category
    k and ``r_i`` its ratings (Gwet 2014, Handbook of Inter-Rater Reliability, ch. 2-4):

    - ``p_a`` = mean over units with r_i >= 2 of ``sum_k r_ik (r*_ik - 1) / (r_i (r_i - 1))``,
      ``r*_ik = sum_l w_kl r_il``;
    - ``pi_k`` = mean over units with r_i >= 1 of ``r_ik / r_i``;
    - ``p_e = T_w / (q (q - 1)) * sum_k pi_k (1 - pi_k)``, ``T_w = sum_kl w_kl``;
    - ``AC2 = (p_a - p_e) / (1 - p_e)``; ``None`` with no unit rated twice, or p_e = 1.

    With quadratic weights ``sum_k r_ik r*_ik = r_i^2 - sum_kl r_ik r_il (k-l)^2/(q-1)^2`` and
    ``sum_kl r_ik r_il (k-l)^2 = 2 (r_i S2 - S1^2)`` from the sums S1, S2 of the codes, so no
    per-category table per unit is built.
    """
    c = np.asarray(codes)
    if c.ndim == 1:
        c = c[:, None]
    q = int(n_categories)
    n_e = c.shape[1]
    out: list[float | None] = []
    if q < 2:
        return [None] * n_e
    k = np.arange(q, dtype=np.float64)
    w = 1.0 - (k[:, None] - k[None, :]) ** 2 / (q - 1) ** 2
    t_w = float(w.sum())
    for e in range(n_e):
        ce = c[:, e].astype(np.int64)
        has = ce >= 0
        ui = unit_idx[has]
        v = ce[has].astype(np.float64)
        m = np.bincount(ui, minlength=n_units).astype(np.float64)
        s1 = np.bincount(ui, weights=v, minlength=n_units)
        s2 = np.bincount(ui, weights=v * v, minlength=n_units)
        pair = m >= 2
        if not bool(pair.any()):
            out.append(None)
            continue
        qu = 2.0 * (m[pair] * s2[pair] - s1[pair] ** 2)
        mm = m[pair] * (m[pair] - 1.0)
        pa = float(np.mean(1.0 - qu / ((q - 1) ** 2 * mm)))
        rated = m >= 1
        pi = np.bincount(ce[has], weights=1.0 / m[ui], minlength=q) / float(rated.sum())
        pe = t_w / (q * (q - 1)) * float(np.sum(pi * (1.0 - pi)))
        out.append(None if pe >= 1.0 else (pa - pe) / (1.0 - pe))
    return out


def zero_inflation(p: _Prepared) -> list[ZeroInflation]:
    """Presence alpha, intensity alpha and AC2 of every emotion of a prepared table."""
    pres = presence_alphas(p)
    inten = intensity_alphas(p)
    ac2 = gwet_ac2(p.unit_idx, p.n_units, p.get_codes(), p.dom.size)
    return [ZeroInflation(e, pres[e], inten[e], ac2[e]) for e in range(p.n_emotions)]


def ratings_per_unit(p: _Prepared) -> float | None:
    """Mean number of ratings per pairable (unit, emotion) cell: the k of Spearman-Brown."""
    m = np.zeros((p.n_units, p.n_emotions))
    has = ~np.isnan(p.x)
    for e in range(p.n_emotions):
        m[:, e] = np.bincount(p.unit_idx[has[:, e]], minlength=p.n_units)
    pair = m >= 2
    return float(m[pair].mean()) if bool(pair.any()) else None


__all__ = ["ZeroInflation", "gwet_ac2", "intensity_alphas", "presence_alphas", "ratings_per_unit", "zero_inflation"]
