"""Pairwise quadratic-weighted Cohen's kappa (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .coefficient import alpha_all
from .constants import FloatArray, I64Array, Id, IntArray, Level
from .prepare import _as_1d, _as_values2d, _check_duplicates, _encode, _factorize, _make_domain
from .results import AlphaResult, PairKappa, RaterAgreement
from .units import (
    SPARSE_MIN_ROWS,
    _alpha_from_stats,
    _moment_results,
    _MomentSums,
    _packed_int_sums,
    _prepare,
    _Prepared,
    _unit_stats,
    _UnitStats,
)


def quadratic_kappa(
    a: npt.ArrayLike, b: npt.ArrayLike, *, categories: Sequence[float]
) -> tuple[float | None, str | None]:
    """Quadratic-weighted Cohen's kappa of two raters over the same items; (kappa, reason).

    Weights are ``(i - j)**2`` on the category positions ``i, j`` of ``categories`` (the scale
    0..max). Items where either rating is NaN are dropped. Undefined (``None`` with a reason)
    with fewer than two common items or when the expected weighted disagreement is zero (both
    raters used one and the same category throughout).
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.size != y.size:
        raise ValueError(f"a and b must have the same length, got {x.size} and {y.size}")
    dom = _make_domain(categories, x)
    keep = ~(np.isnan(x) | np.isnan(y))
    both = np.stack([x[keep], y[keep]], axis=1)
    codes = _encode(both, dom).astype(np.float64)
    k, reason = _kappa_from_moments(
        float(codes.shape[0]),
        float(codes[:, 0].sum()),
        float(codes[:, 1].sum()),
        float((codes[:, 0] ** 2).sum()),
        float((codes[:, 1] ** 2).sum()),
        float((codes[:, 0] * codes[:, 1]).sum()),
    )
    return k, reason


def _kappa_from_moments(
    n: float, sa: float, sb: float, saa: float, sbb: float, sab: float
) -> tuple[float | None, str | None]:
    # kappa_w = 1 - n * sum_i (a_i - b_i)^2 / sum_i sum_j (a_i - b_j)^2 for quadratic weights.
    if n < 2:
        return None, f"fewer than 2 common images ({int(n)})"
    obs = saa + sbb - 2.0 * sab
    exp = n * saa + n * sbb - 2.0 * sa * sb
    if exp <= 0:
        return None, "no variance: both raters gave one and the same value throughout"
    return 1.0 - n * obs / exp, None


def _within_unit_pairs(unit_idx: IntArray, rater_idx: IntArray) -> tuple[IntArray, IntArray]:
    """Row pairs (i, j) of the same unit with rater_idx[i] < rater_idx[j]."""
    du, dr = np.diff(unit_idx), np.diff(rater_idx)
    if bool(((du > 0) | ((du == 0) & (dr > 0))).all()):
        order = np.arange(unit_idx.size)  # by unit then rater already (as the database reads come)
    else:
        order = np.lexsort((rater_idx, unit_idx))
    del du, dr
    su = unit_idx[order]
    firsts: list[IntArray] = []
    seconds: list[IntArray] = []
    k = 1
    while k < su.size:
        same = su[:-k] == su[k:]
        if not bool(same.any()):
            break
        firsts.append(order[:-k][same])
        seconds.append(order[k:][same])
        k += 1
    if not firsts:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty
    return np.concatenate(firsts), np.concatenate(seconds)


def _pairwise_from(
    unit_idx: IntArray, rater_idx: IntArray, rater_ids: npt.NDArray[np.generic], codes: npt.NDArray[np.int16]
) -> list[PairKappa]:
    i, j = _within_unit_pairs(unit_idx, rater_idx)
    n_r = int(rater_ids.size)
    n_e = int(codes.shape[1])
    group = rater_idx[i] * n_r + rater_idx[j]
    order = np.argsort(group, kind="stable")
    i, j, gs = i[order], j[order], group[order]
    if gs.size == 0:
        return []
    starts = np.flatnonzero(np.concatenate([[True], gs[1:] != gs[:-1]]))
    gkeys = gs[starts]
    g = int(starts.size)
    # Integer sums per (pair group, emotion): n, sum a, sum b, sum a^2, sum b^2, sum ab; a chunk of
    # pairs at a time with whole rows of codes (gathering one emotion's column at a time touched a
    # cache line per value: most of the time at 3,000,000 ratings, #21). Integers: exact in any order.
    sums = np.zeros((6, g, n_e), dtype=np.int64)
    group_of = np.cumsum(np.concatenate([[True], gs[1:] != gs[:-1]])) - 1  # each pair's group
    step = max(1, (1 << 20) // max(n_e, 1))
    max_code = max(int(codes.max()), 1) if codes.size else 1
    for p0 in range(0, gs.size, step):
        p1 = min(p0 + step, gs.size)
        local = np.flatnonzero(np.concatenate([[True], gs[p0 + 1 : p1] != gs[p0 : p1 - 1]]))
        at = group_of[p0 + local]
        ca = codes[i[p0:p1]].astype(np.int32)
        cb = codes[j[p0:p1]].astype(np.int32)
        if bool((ca < 0).any() or (cb < 0).any()):
            ok = (ca >= 0) & (cb >= 0)
            ca = np.where(ok, ca, 0)
            cb = np.where(ok, cb, 0)
            sums[0, at] += np.add.reduceat(ok, local, axis=0, dtype=np.int64)
        else:
            sums[0, at] += np.diff(np.append(local, p1 - p0)).astype(np.int64)[:, None]
        if p1 - p0 < SPARSE_MIN_ROWS:  # a small table: no scipy to import (start-up, #21); the same integers
            for si, z in enumerate((ca, cb, ca * ca, cb * cb, ca * cb), start=1):
                sums[si, at] += np.add.reduceat(z, local, axis=0, dtype=np.int64)
            continue
        import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up

        # the five sums of every group of the chunk from one sparse (groups x pairs) product (runs of
        # pairs: np.add.reduceat's passes took three times as long, #21), in int32 where no sum can
        # leave it (codes up to 7: at most 49 x the chunk's pairs), else int64: exact either way
        wide = np.int64 if max_code * max_code * (p1 - p0) >= 2**31 else np.int32
        ind = sp.csr_matrix((np.ones(p1 - p0, dtype=wide), np.arange(p1 - p0, dtype=np.intp),
                             np.append(local, p1 - p0).astype(np.intp)), shape=(local.size, p1 - p0))
        five = ind @ np.concatenate([ca, cb, ca * ca, cb * cb, ca * cb], axis=1).astype(wide, copy=False)
        sums[1:, at] += np.asarray(five).reshape(local.size, 5, n_e).transpose(1, 0, 2)
    n, sa, sb, saa, sbb, sab = sums
    obs = (saa + sbb - 2 * sab).astype(np.float64)
    exp = (n * saa + n * sbb - 2 * sa * sb).astype(np.float64)
    nf = n.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        kap = 1.0 - nf * obs / exp
    ids = rater_ids.tolist()
    pairs = [divmod(int(key), n_r) for key in gkeys.tolist()]
    n_l, kap_l, exp_l = n.T.tolist(), kap.T.tolist(), exp.T.tolist()
    no_var = "no variance: both raters gave one and the same value throughout"
    out: list[PairKappa] = []
    for e in range(n_e):
        ne, ke, ee = n_l[e], kap_l[e], exp_l[e]
        for gi, (ra, rb) in enumerate(pairs):
            nn = ne[gi]
            if nn < 2:
                out.append(PairKappa(e, ids[ra], ids[rb], nn, None, f"fewer than 2 common images ({nn})"))
            elif ee[gi] <= 0:
                out.append(PairKappa(e, ids[ra], ids[rb], nn, None, no_var))
            else:
                out.append(PairKappa(e, ids[ra], ids[rb], nn, ke[gi], None))
    return out


def pairwise_kappas(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    values2d: npt.ArrayLike,
    *,
    domain: Sequence[float],
) -> list[PairKappa]:
    """Quadratic-weighted kappa for every emotion and every pair of raters sharing a unit.

    Each kappa uses the units both raters rated (and where neither rating of that emotion is
    missing). Ordered by emotion, then rater pair.
    """
    u = _as_1d("units", units)
    r = _as_1d("raters", raters)
    if r.size != u.size:
        raise ValueError(f"raters has {r.size} entries but units has {u.size}")
    x = _as_values2d(values2d, u.size)
    unit_idx, unit_ids = _factorize(u)
    rater_idx, rater_ids = _check_duplicates(unit_idx, unit_ids, r)
    codes = _encode(x, _make_domain(domain, x))
    return _pairwise_from(unit_idx, rater_idx, rater_ids, codes)


def _loo_moment_results(
    p: _Prepared, st: _UnitStats, rater_idx: IntArray, n_raters: int
) -> list[list[AlphaResult]]:
    """Interval alpha without each rater, from the full per-unit integer moments.

    Removing rater r changes only the units r rated, each by one rating: their (m, s1, s2) lose
    (1, c, c**2). The exact integer totals of ``_MomentSums`` are corrected by the per-rater sum
    of (contribution before - contribution after) of those units, so the result is bit-identical
    to ``alpha_all`` on the table without r's rows.
    """
    full = _packed_int_sums(st)
    fast = _loo_by_histogram(p, st, rater_idx, n_raters, int(full.qm.shape[1]))
    if fast is not None:
        d_all, dq_all = fast
        scale = p.dom.step**2
        return [
            _moment_results(
                p.level,
                _MomentSums(
                    full.n_units - d_all[r, :, 0],
                    full.n - d_all[r, :, 1],
                    full.t1 - d_all[r, :, 2],
                    full.t2 - d_all[r, :, 3],
                    full.qm - dq_all[r],
                ),
                scale,
            )
            for r in range(n_raters)
        ]
    m, s1, s2 = st.moment_ints()
    codes = p.get_codes()
    n_e = p.n_emotions
    n_q = int(full.qm.shape[1])
    order = np.argsort(rater_idx, kind="stable")
    rs = rater_idx[order]
    starts = np.flatnonzero(np.concatenate([[True], rs[1:] != rs[:-1]])) if rs.size else np.zeros(0, np.intp)
    present = rs[starts] if rs.size else np.zeros(0, np.intp)
    ui = p.unit_idx[order]
    codes_t = codes[order].T  # (E, rows) in rater order
    d = np.zeros((4, n_e, int(starts.size)), dtype=np.int64)
    dq = np.zeros((n_q, n_e, int(starts.size)), dtype=np.int64)
    step = max(1, (1 << 21) // max(int(rs.size), 1))
    for e0 in range(0, n_e if rs.size else 0, step):
        sl = slice(e0, min(e0 + step, n_e))
        c = codes_t[sl].astype(np.int64)
        has = c >= 0
        cc = np.where(has, c, 0)
        mu, a1, a2 = m[sl][:, ui], s1[sl][:, ui], s2[sl][:, ui]
        mr = mu - has
        r1 = a1 - cc
        r2 = a2 - cc * cc
        pf = mu >= 2
        pr = mr >= 2
        for t, (vf, vr) in enumerate(((pf, pr), (mu, mr), (a1, r1), (a2, r2))):
            delta = np.where(pf, vf, 0) - np.where(pr, vr, 0)
            d[t, sl] = np.add.reduceat(delta, starts, axis=1)
        qf = np.where(pf, 2 * (mu * a2 - a1 * a1), 0)
        qr = np.where(pr, 2 * (mr * r2 - r1 * r1), 0)
        for k in range(2, n_q):
            delta = np.where(mu == k, qf, 0) - np.where(mr == k, qr, 0)
            dq[k, sl] = np.add.reduceat(delta, starts, axis=1)
    out: list[list[AlphaResult]] = [[] for _ in range(n_raters)]
    scale = p.dom.step**2
    for gi, ri in enumerate(present.tolist()):
        ms = _MomentSums(
            full.n_units - d[0, :, gi],
            full.n - d[1, :, gi],
            full.t1 - d[2, :, gi],
            full.t2 - d[3, :, gi],
            full.qm - dq[:, :, gi].T,
        )
        out[ri] = _moment_results(p.level, ms, scale)
    return out


def _loo_by_histogram(
    p: _Prepared, st: _UnitStats, rater_idx: IntArray, n_raters: int, n_q: int
) -> tuple[I64Array, I64Array] | None:
    """Per rater, the change of the ``_MomentSums`` integers when that rater is removed, as
    (n_raters, E, 4) [pairable, n, t1, t2] and (n_raters, E, n_q) [qm] arrays.

    Each row changes its unit's packed code P (for one emotion) to P - pack(c); the change of the
    totals is sum over rows of table[P] - table[P - pack(c)]. Histograms of (rater, emotion,
    code) before and after, times the per-code table, give that for all raters at once.
    ``None`` when the codes are too many for the histograms (the caller then works per row).
    """
    assert st.packed is not None
    tot = st.packed
    n_rows, n_e = p.x.shape
    top = int(tot.max()) + 1 if tot.size else 1
    if top > 4 * n_rows + 4096 or n_rows == 0:
        return None
    v = p.dom.size
    lut = np.array([1 + (c << st.b1) + ((c * c) << st.b2) for c in range(v)] + [0], dtype=np.int64)
    codes = p.get_codes()

    def before_after(r0: int, r1: int) -> tuple[I64Array, I64Array]:
        before = tot[p.unit_idx[r0:r1]].astype(np.int64)  # (rows, E): the unit's code with every rating
        return before, before - lut[codes[r0:r1]]  # without this row's rating (-1 = missing picks the 0)

    # a chunk of rows at a time (no (rows, E) int64 tables: 1 GB each at 3,000,000 ratings). The codes
    # that can occur: every unit's, and each of those less one rating of any value (a superset of
    # those that do: the bins of the others stay empty)
    mark = np.zeros(top, dtype=bool)
    step = max(1, (1 << 20) // max(n_e, 1))
    for u0 in range(0, tot.shape[0], step):
        mark[tot[u0 : u0 + step].ravel()] = True
    pc = np.flatnonzero(mark).astype(np.int64)[:, None]
    cv = np.arange(v, dtype=np.int64)[None, :]
    # a rating of value index c can leave a unit whose parts hold it: m >= 1, s1 >= c, s2 >= c**2
    fits = (((pc & ((1 << st.b1) - 1)) >= 1) & (((pc >> st.b1) & ((1 << (st.b2 - st.b1)) - 1)) >= cv)
            & ((pc >> st.b2) >= cv * cv))
    mark[(pc - lut[None, :v])[fits]] = True
    used = np.flatnonzero(mark)
    n_used = int(used.size)
    if n_raters * n_e * n_used > (1 << 25):
        return None
    dense = np.cumsum(mark, dtype=np.int64) - 1
    n_bins = n_raters * n_e * n_used
    h = np.zeros(n_bins, dtype=np.int64)
    step = max(step, n_bins // max(n_e, 1))  # chunks worth a bincount of n_bins
    for r0 in range(0, n_rows, step):
        r1 = min(r0 + step, n_rows)
        before, after = before_after(r0, r1)
        base = (rater_idx[r0:r1].astype(np.int64)[:, None] * n_e + np.arange(n_e, dtype=np.int64)) * n_used
        h += np.bincount((base + dense[before]).ravel(), minlength=n_bins)
        h -= np.bincount((base + dense[after]).ravel(), minlength=n_bins)
    h = h.reshape(n_raters * n_e, n_used)
    c = used.astype(np.int64)
    m = c & ((1 << st.b1) - 1)
    s1 = (c >> st.b1) & ((1 << (st.b2 - st.b1)) - 1)
    s2 = c >> st.b2
    pair = m >= 2
    table = np.stack([pair, m * pair, s1 * pair, s2 * pair], axis=1).astype(np.int64)
    qtab = np.zeros((n_used, n_q), dtype=np.int64)
    qtab[np.flatnonzero(pair), m[pair]] = 2 * (m * s2 - s1 * s1)[pair]
    d = (h @ table).reshape(n_raters, n_e, 4)
    dq = (h @ qtab).reshape(n_raters, n_e, n_q)
    return d, dq


def _loo_alphas(p: _Prepared, st: _UnitStats, rater_idx: IntArray, n_r: int) -> list[list[AlphaResult]]:
    """Alpha of every emotion without each rater in turn (rater index -> list over emotions)."""
    if st.kind == "moments":
        return _loo_moment_results(p, st, rater_idx, n_r)
    domain = p.dom.values.tolist()
    without = []
    for ri in range(n_r):
        keep = rater_idx != ri
        without.append(alpha_all(p.unit_idx[keep], None, p.x[keep], level=p.level, domain=domain))
    return without


def loo_matrix(without: Sequence[Sequence[AlphaResult]]) -> FloatArray:
    """(raters, emotions) alphas from ``_loo_alphas``; NaN where undefined."""
    return np.array([[np.nan if a.alpha is None else a.alpha for a in row] for row in without],
                    dtype=np.float64).reshape(len(without), -1)


def _rater_agreement_from(
    p: _Prepared,
    st: _UnitStats,
    rater_idx: IntArray,
    rater_ids: npt.NDArray[np.generic],
    kappas: Sequence[PairKappa],
    without: list[list[AlphaResult]] | None = None,
) -> list[RaterAgreement]:
    with_all = _alpha_from_stats(p, st)
    if without is None:
        without = _loo_alphas(p, st, rater_idx, int(rater_ids.size))
    per: dict[tuple[Id, int], list[float]] = defaultdict(list)
    for pk in kappas:
        if pk.kappa is not None:
            per[(pk.rater_a, pk.emotion)].append(pk.kappa)
            per[(pk.rater_b, pk.emotion)].append(pk.kappa)
    out: list[RaterAgreement] = []
    for ri, rid in enumerate(rater_ids.tolist()):
        for e in range(p.n_emotions):
            ks = per.get((rid, e), [])
            out.append(
                RaterAgreement(
                    rid,
                    e,
                    len(ks),
                    float(np.mean(ks)) if ks else None,
                    with_all[e].alpha,
                    without[ri][e].alpha,
                )
            )
    return out


def rater_agreement(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    values2d: npt.ArrayLike,
    *,
    domain: Sequence[float],
    level: Level = "interval",
    kappas: Sequence[PairKappa] | None = None,
) -> list[RaterAgreement]:
    """Leave-one-out agreement of every rater on every emotion (see ``RaterAgreement``)."""
    u = _as_1d("units", units)
    r = _as_1d("raters", raters)
    if r.size != u.size:
        raise ValueError(f"raters has {r.size} entries but units has {u.size}")
    p = _prepare(u, values2d, level=level, domain=domain, raters=None)
    rater_idx, rater_ids = _check_duplicates(p.unit_idx, p.unit_ids, r)
    if kappas is None:
        kappas = _pairwise_from(p.unit_idx, rater_idx, rater_ids, p.get_codes())
    return _rater_agreement_from(p, _unit_stats(p), rater_idx, rater_ids, kappas)
