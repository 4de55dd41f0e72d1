"""Zero inflation said out loud: presence and intensity agreement, and Gwet's AC2 (part of
annotation.agreement; contracts in its docstring).

Most ratings are 0 ("not present"), so one alpha mixes two questions: do the experts agree
*whether* an emotion is present, and, when they both see it, *how strongly*. docs/agreement.md
("Zero inflation") defines the three figures computed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .constants import FloatArray, IntArray
from .results import AlphaResult
from .units import (
    _alpha_from_stats,
    _hist_int_sums,
    _moment_results,
    _MomentSums,
    _packed_int_sums,
    _prepare,
    _Prepared,
    _unit_stats,
    _unit_sums,
    _UnitStats,
)


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


def gwet_ac2(unit_idx: IntArray, n_units: int, codes: np.ndarray, n_categories: int,
             moments: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> list[float | None]:
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
    per-category table per unit is built. ``moments``: the per-unit (m, S1, S2) of ``codes`` as
    integer arrays of shape (emotions, units) when the caller has them (the engine's moment
    statistics), instead of summing them here; the same numbers.
    """
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up
    c = np.asarray(codes)
    if c.ndim == 1:
        c = c[:, None]
    q = int(n_categories)
    n_rows, n_e = c.shape
    if q < 2:
        return [None] * n_e
    k = np.arange(q, dtype=np.float64)
    t_w = float((1.0 - (k[:, None] - k[None, :]) ** 2 / (q - 1) ** 2).sum())
    has = c >= 0
    if moments is not None:
        # exact integers either way; (units, emotions) in C order, as the sparse products give them
        m, s1, s2 = (np.ascontiguousarray(a.T, dtype=np.float64) for a in moments)
    else:
        # per (unit, emotion): ratings m, sum S1 and sum of squares S2 of the codes, as sparse products
        cf = np.where(has, c, 0).astype(np.float64)
        ind = sp.csr_matrix((np.ones(n_rows), (unit_idx, np.arange(n_rows))), shape=(n_units, n_rows))
        m = np.asarray(ind @ has.astype(np.float64))
        s1 = np.asarray(ind @ cf)
        s2 = np.asarray(ind @ (cf * cf))
    pair = m >= 2
    rated = (m >= 1).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(pair, 1.0 - 2.0 * (m * s2 - s1 * s1) / ((q - 1) ** 2 * m * (m - 1.0)), 0.0)
        pa = term.sum(axis=0) / pair.sum(axis=0)
        # pi_k: mean over rated units of r_ik / r_i, from one weighted bincount over (emotion, code)
        w = np.where(has, 1.0 / m[unit_idx], 0.0)
    idx = (np.arange(n_e)[None, :] * q + np.where(has, c, 0)).ravel()
    pi = np.bincount(idx, weights=w.ravel(), minlength=n_e * q).reshape(n_e, q)
    pi = pi / np.maximum(rated, 1)[:, None]
    pe = t_w / (q * (q - 1)) * (pi * (1.0 - pi)).sum(axis=1)
    out: list[float | None] = []
    for e in range(n_e):
        if not bool(pair[:, e].any()) or pe[e] >= 1.0:
            out.append(None)
        else:
            out.append(float((pa[e] - pe[e]) / (1.0 - pe[e])))
    return out


def _from_moments(p: _Prepared, st: _UnitStats) -> tuple[list[AlphaResult], list[AlphaResult]] | None:
    """Presence and intensity alphas from the table's per-unit moments plus one more per-unit
    count (the non-zero ratings), without preparing two more tables: the same integer sums as
    ``presence_alphas`` / ``intensity_alphas`` and so the same alphas, bit for bit. None where
    that does not apply (not interval on an evenly spaced domain starting at 0)."""
    dom = p.dom
    if st.kind != "moments" or p.level != "interval" or dom.size < 2 or dom.values[0] != 0.0:
        return None
    assert st.packed is not None
    codes = p.get_codes()
    # non-zero ratings per (unit, emotion): domain index > 0 (index 0 is the value 0, -1 missing)
    nz_all = _unit_sums(p, lambda xc, r0: codes[r0 : r0 + xc.shape[0]] > 0, st.packed.dtype)
    scale = (dom.step if dom.size > 2 else 1.0) ** 2  # a one-value domain has step 1
    u, e = st.packed.shape
    # every presence and intensity code is at most its unit's code in the table (each part is)
    top = int(st.packed.max()) + 1 if st.packed.size else 1
    if top > 4 * u + 4096:
        m, s1, s2 = st.moment_ints()
        nz = np.ascontiguousarray(nz_all.T).astype(np.int64)
        return (_moment_results("interval", _sums(st, m, nz, nz), 1.0),
                _moment_results(p.level, _sums(st, nz, s1 - nz, s2 - 2 * s1 + nz), scale))
    # the histograms of the presence and intensity codes, a chunk of units at a time
    h_pres = np.zeros(top * e, dtype=np.int64)
    h_int = np.zeros(top * e, dtype=np.int64)
    offset = top * np.arange(e, dtype=np.int64)
    b1, b2 = st.b1, st.b2
    step = max(1, max(1 << 20, top * e) // max(e, 1))
    for u0 in range(0, u, step):
        c = st.packed[u0 : u0 + step].astype(np.int64)
        m = c & ((1 << b1) - 1)
        s1 = (c >> b1) & ((1 << (b2 - b1)) - 1)
        s2 = c >> b2
        nz = nz_all[u0 : u0 + step].astype(np.int64)
        # presence: values 0/1 on the domain (0, 1) (its index is the value itself)
        h_pres += np.bincount(((m | (nz << b1) | (nz << b2)) + offset).ravel(), minlength=top * e)
        # intensity: the non-zero ratings, on the domain without 0 (index c - 1 for index c)
        h_int += np.bincount(((nz | ((s1 - nz) << b1) | ((s2 - 2 * s1 + nz) << b2)) + offset).ravel(),
                             minlength=top * e)
    pres = _moment_results("interval", _hist_int_sums(h_pres.reshape(e, top), b1, b2), 1.0)
    inten = _moment_results(p.level, _hist_int_sums(h_int.reshape(e, top), b1, b2), scale)
    return pres, inten


def _sums(st: _UnitStats, m: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> _MomentSums:
    """``_moment_int_sums(m, s1, s2)`` through the histogram of packed codes (``_packed_int_sums``),
    packed with the table's bit widths: each of m, s1, s2 here is at most the table's own."""
    packed = (m | (s1 << st.b1) | (s2 << st.b2)).T
    return _packed_int_sums(_UnitStats("moments", packed=packed, b1=st.b1, b2=st.b2))


def _gwet_from_stats(p: _Prepared, st: _UnitStats) -> list[float | None]:
    """``gwet_ac2(p.unit_idx, p.n_units, p.get_codes(), p.dom.size, moments=st.moment_ints())``, the
    same numbers bit for bit, a chunk of units and an emotion at a time: no (units, emotions)
    float64 tables nor a (rows, emotions) table of weights (about 3 GB at a million images)."""
    assert st.packed is not None
    q = p.dom.size
    u, n_e = st.packed.shape
    if q < 2:
        return [None] * n_e
    k = np.arange(q, dtype=np.float64)
    t_w = float((1.0 - (k[:, None] - k[None, :]) ** 2 / (q - 1) ** 2).sum())
    b1, b2 = st.b1, st.b2
    # p_a: gwet_ac2 sums its (units, emotions) terms down each column in unit order; a chunk at a
    # time with the running total added to the chunk's first row is that very sum
    acc = np.zeros(n_e)
    n_pair = np.zeros(n_e, dtype=np.int64)
    rated = np.zeros(n_e, dtype=np.int64)
    step = max(1, (1 << 20) // max(n_e, 1))
    for u0 in range(0, u, step):
        c = st.packed[u0 : u0 + step].astype(np.int64)
        m = (c & ((1 << b1) - 1)).astype(np.float64)
        s1 = ((c >> b1) & ((1 << (b2 - b1)) - 1)).astype(np.float64)
        s2 = (c >> b2).astype(np.float64)
        pair = m >= 2
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(pair, 1.0 - 2.0 * (m * s2 - s1 * s1) / ((q - 1) ** 2 * m * (m - 1.0)), 0.0)
        term[0] += acc
        acc = term.sum(axis=0)
        n_pair += pair.sum(axis=0)
        rated += (m >= 1).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = acc / n_pair
    # pi_k: gwet_ac2's one weighted bincount over (emotion, code) adds each bin's weights in row
    # order; a bin holds one emotion, so one bincount per emotion adds the same weights in the same order
    codes = p.get_codes()
    pi = np.zeros((n_e, q))
    if p.x.dtype.kind in "iu":  # no missing values: every emotion's m is the unit's number of rows
        pi = _pi_shared(codes, 1.0 / p.rows_per_unit.astype(np.float64), p.unit_idx, q)
        return _ac2_from(pa, pi, rated, n_pair, t_w, q)
    shared = None
    # the codes emotion by emotion (a transposed copy, a block of rows at a time): a column of the
    # row-major table touches a cache line per value
    by_emotion = np.empty((n_e, codes.shape[0]), dtype=np.int8 if q <= 127 else codes.dtype)
    for r0 in range(0, codes.shape[0], 1 << 16):
        by_emotion[:, r0 : r0 + (1 << 16)] = codes[r0 : r0 + (1 << 16)].T
    for j in range(n_e):
        cj = by_emotion[j]
        if shared is not None:
            pi[j] = np.bincount(cj, weights=shared, minlength=q)
            continue
        mj = st.moments_of(j)[0].astype(np.float64)
        has = cj >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(has, 1.0 / mj[p.unit_idx], 0.0)
        pi[j] = np.bincount(np.where(has, cj, 0), weights=w, minlength=q)
    return _ac2_from(pa, pi, rated, n_pair, t_w, q)


def _ac2_from(pa: FloatArray, pi: FloatArray, rated: npt.NDArray[np.int64], n_pair: npt.NDArray[np.int64],
              t_w: float, q: int) -> list[float | None]:
    """AC2 per emotion from p_a, the summed pi weights, the rated and pairable units."""
    pi = pi / np.maximum(rated, 1)[:, None]
    pe = t_w / (q * (q - 1)) * (pi * (1.0 - pi)).sum(axis=1)
    out: list[float | None] = []
    for e in range(pa.size):
        if not n_pair[e] or pe[e] >= 1.0:
            out.append(None)
        else:
            out.append(float((pa[e] - pe[e]) / (1.0 - pe[e])))
    return out


def _pi_shared(codes: npt.NDArray[np.integer], inv_m: FloatArray, unit_idx: npt.NDArray[np.intp],
               q: int) -> FloatArray:
    """(E, q) sums of each row's weight ``inv_m[unit]`` per emotion and code of a table without missing
    values: per bin, the weights added in row order, as gwet_ac2's one weighted bincount over
    (emotion, code) adds them. A chunk of rows at a time, each chunk's bincount starting from the
    running totals (fed in first, each bin's once: 0 + total is the total), so the additions are
    that very sequence, without a transposed copy of the table (120 MB at a million images, #21)."""
    n, n_e = codes.shape
    offset = q * np.arange(n_e, dtype=np.int64)
    bins = np.arange(n_e * q, dtype=np.int64)
    acc = np.zeros(n_e * q)
    step = max(1, (1 << 20) // max(n_e, 1))
    for r0 in range(0, n, step):
        c = codes[r0 : r0 + step]
        keys = np.concatenate([bins, (c + offset).ravel()])
        w = np.concatenate([acc, np.repeat(inv_m[unit_idx[r0 : r0 + step]], n_e)])
        acc = np.bincount(keys, weights=w, minlength=n_e * q)
    return acc.reshape(n_e, q)


def zero_inflation(p: _Prepared, st: _UnitStats | None = None) -> list[ZeroInflation]:
    """Presence alpha, intensity alpha and AC2 of every emotion of a prepared table (``st``: its
    per-unit statistics when the caller has them, which saves preparing two more tables)."""
    fast = _from_moments(p, st) if st is not None else None
    if fast is not None:
        pres, inten = fast
        ac2 = _gwet_from_stats(p, st)  # type: ignore[arg-type]
    else:
        pres = presence_alphas(p)
        inten = intensity_alphas(p)
        ac2 = gwet_ac2(p.unit_idx, p.n_units, p.get_codes(), p.dom.size)
    return [ZeroInflation(e, pres[e], inten[e], ac2[e]) for e in range(p.n_emotions)]


def ratings_per_unit(p: _Prepared, st: _UnitStats | None = None) -> float | None:
    """Mean number of ratings per pairable (unit, emotion) cell: the k of Spearman-Brown."""
    if st is not None and st.kind == "moments":
        assert st.packed is not None
        # integer counts: the float sum is exact in any order, so the same mean as below
        tot, n_ok = 0, 0
        step = max(1, (1 << 20) // max(p.n_emotions, 1))
        for u0 in range(0, p.n_units, step):
            mi = st.packed[u0 : u0 + step].astype(np.int64) & ((1 << st.b1) - 1)
            ok = mi >= 2
            tot += int(mi[ok].sum())
            n_ok += int(ok.sum())
        return float(tot / n_ok) if n_ok else None
    m = np.zeros((p.n_units, p.n_emotions))
    has = ~np.isnan(p.x)
    for e in range(p.n_emotions):
        m[:, e] = np.bincount(p.unit_idx[has[:, e]], minlength=p.n_units)
    pair = m >= 2
    return float(m[pair].mean()) if bool(pair.any()) else None


__all__ = ["ZeroInflation", "gwet_ac2", "intensity_alphas", "presence_alphas", "ratings_per_unit", "zero_inflation"]
