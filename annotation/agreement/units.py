"""Per-unit statistics (the core) (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .constants import (
    LEVELS,
    REASON_NO_PAIRABLE,
    REASON_NO_VARIATION,
    BoolArray,
    FloatArray,
    I64Array,
    IntArray,
    Level,
)
from .prepare import (
    _as_1d,
    _as_table,
    _check_duplicates,
    _Domain,
    _encode,
    _encode_chunk,
    _factorize,
    _make_domain,
    _row_chunks,
    _unit_matrix,
)
from .results import AlphaResult


@dataclass
class _Prepared:
    """Validated long table: unit codes, domain and the per-emotion encoded values."""

    unit_idx: IntArray
    unit_ids: npt.NDArray[np.generic]
    n_units: int
    dom: _Domain
    level: Level
    x: npt.NDArray[Any]  # float64 with NaN = missing, or an integer table as given (no missing)
    rows_per_unit: IntArray
    codes: npt.NDArray[np.int16] | None = None
    _sorted: bool | None = None

    @property
    def units_sorted(self) -> bool:
        """Whether the rows come unit by unit (as the database reads give them): per-unit sums are
        then summed row chunk by row chunk, without a table of every row."""
        if self._sorted is None:
            self._sorted = bool(self.unit_idx.size < 2 or (self.unit_idx[1:] >= self.unit_idx[:-1]).all())
        return self._sorted

    @property
    def n_emotions(self) -> int:
        return int(self.x.shape[1])

    def get_codes(self) -> npt.NDArray[np.int16]:
        if self.codes is None:
            self.codes = _encode(self.x, self.dom)
        return self.codes


def _prepare(
    units: npt.ArrayLike,
    values2d: npt.ArrayLike,
    *,
    level: Level,
    domain: Sequence[float] | None,
    raters: npt.ArrayLike | None,
) -> _Prepared:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    u = _as_1d("units", units)
    x = _as_table(values2d, u.size)
    unit_idx, unit_ids = _factorize(u)
    if raters is not None:
        r = _as_1d("raters", raters)
        if r.size != u.size:
            raise ValueError(f"raters has {r.size} entries but units has {u.size}")
        _check_duplicates(unit_idx, unit_ids, r)
    dom = _make_domain(domain, x)
    rows_per_unit = np.bincount(unit_idx, minlength=unit_ids.size).astype(np.intp)
    return _Prepared(unit_idx, unit_ids, int(unit_ids.size), dom, level, x, rows_per_unit)


@dataclass
class _UnitStats:
    """Per-unit sufficient statistics for every emotion.

    ``kind == "moments"`` (interval level on an evenly spaced domain): ``packed`` of shape
    (U, E) holds per unit the number of ratings ``m``, the sum ``s1`` of the domain indices and
    the sum ``s2`` of their squares, packed into one integer ``m + s1 * 2**b1 + s2 * 2**b2``.
    ``kind == "counts"``: ``counts`` is a list over emotions of (U, V) value counts and ``m`` the
    (U, E) number of ratings.
    """

    kind: Literal["moments", "counts"]
    packed: npt.NDArray[np.integer] | None = None
    b1: int = 0
    b2: int = 0
    m: FloatArray | None = None
    counts: list[FloatArray] | None = None
    ints: tuple[I64Array, I64Array, I64Array] | None = None

    def moment_ints(self) -> tuple[I64Array, I64Array, I64Array]:
        """Per-unit (m, s1, s2) as int64 arrays of shape (E, U) (moments kind only; cached)."""
        if self.ints is None:
            assert self.packed is not None
            c = self.packed.T.astype(np.int64)
            m = c & ((1 << self.b1) - 1)
            s1 = (c >> self.b1) & ((1 << (self.b2 - self.b1)) - 1)
            self.ints = (m, s1, c >> self.b2)
        return self.ints

    def packed_by_emotion(self) -> npt.NDArray[np.integer]:
        """``packed.T`` as a C-ordered (E, U) copy, made a block of units at a time: one emotion's
        codes contiguous (a column of ``packed`` touches a cache line per unit)."""
        assert self.packed is not None
        u, e = self.packed.shape
        out = np.empty((e, u), dtype=self.packed.dtype)
        for u0 in range(0, u, 1 << 16):
            out[:, u0 : u0 + (1 << 16)] = self.packed[u0 : u0 + (1 << 16)].T
        return out

    def moments_of(self, j: int, units: slice | None = None) -> tuple[I64Array, I64Array, I64Array]:
        """Emotion j's per-unit (m, s1, s2) as int64 arrays of shape (U,) (of the units in the slice
        ``units`` when given): one column of ``moment_ints`` without the three (E, U) int64 tables."""
        if self.ints is not None:
            sl = slice(None) if units is None else units
            return self.ints[0][j, sl], self.ints[1][j, sl], self.ints[2][j, sl]
        assert self.packed is not None
        c = (self.packed[:, j] if units is None else self.packed[units, j]).astype(np.int64)
        return c & ((1 << self.b1) - 1), (c >> self.b1) & ((1 << (self.b2 - self.b1)) - 1), c >> self.b2

    def unpack(self, codes: npt.NDArray[np.integer]) -> tuple[FloatArray, FloatArray, FloatArray]:
        c = codes.astype(np.int64)
        m = (c & ((1 << self.b1) - 1)).astype(np.float64)
        s1 = ((c >> self.b1) & ((1 << (self.b2 - self.b1)) - 1)).astype(np.float64)
        s2 = (c >> self.b2).astype(np.float64)
        return m, s1, s2


def _packing_dtype(bits: int) -> npt.DTypeLike | None:
    if bits <= 16:
        return np.uint16
    if bits <= 31:
        return np.int32
    if bits <= 62:
        return np.int64
    return None


def _moment_stats(p: _Prepared) -> _UnitStats | None:
    """Per-unit (count, sum, sum of squares) of domain indices for all emotions in one pass.

    Each rating with domain index c is packed into one small integer ``1 + c*2**b1 + c*c*2**b2``
    (0 when missing), so a single sparse product ``units x rows @ packed`` yields all three
    per-unit sums; the bit widths come from the largest unit so the packed sums cannot overflow.
    """
    v = p.dom.size
    m_max = int(p.rows_per_unit.max()) if p.rows_per_unit.size else 0
    b1 = max(m_max.bit_length(), 1)
    bs1 = max(((v - 1) * m_max).bit_length(), 1)
    bs2 = max(((v - 1) ** 2 * m_max).bit_length(), 1)
    dtype = _packing_dtype(b1 + bs1 + bs2)
    if dtype is None:
        return None
    lut = np.array([1 + (c << b1) + ((c * c) << (b1 + bs1)) for c in range(v)] + [0], dtype=dtype)
    # index -1 (missing) picks the trailing 0 of the table
    if p.x.dtype == np.int16 and p.dom.start == 0.0 and p.dom.step == 1.0:
        codes = p.get_codes()  # the table itself, validated once
        tot = _unit_sums(p, lambda xc, r0: lut[codes[r0 : r0 + xc.shape[0]]], dtype)
    else:
        tot = _unit_sums(p, lambda xc, r0: lut[_encode_chunk(xc, p.dom, r0)], dtype)
    return _UnitStats("moments", packed=tot, b1=b1, b2=b1 + bs1)


# Row chunks from this many rows sum their units' runs by a sparse product (scipy), smaller ones by
# np.add.reduceat: the same integers; a small project's report then runs without importing scipy
# (tests/test_startup.py), a big one at a third of reduceat's time (#21).
SPARSE_MIN_ROWS = 4096


def _unit_sums(p: _Prepared, per_row: Callable[[npt.NDArray[Any], int], npt.NDArray[Any]],
               dtype: npt.DTypeLike) -> npt.NDArray[np.integer]:
    """Per-unit sums (U, E) of ``per_row(x[r0:r1], r0)`` (integers in ``dtype``, which must hold the
    sums). Rows unit by unit (the usual case): summed a row chunk at a time, no (rows, E) table;
    otherwise one sparse product over the whole table."""
    n, e = p.x.shape
    if not p.units_sorted:
        packed = np.empty((n, e), dtype=dtype)
        for r0, r1 in _row_chunks(n, e):
            packed[r0:r1] = per_row(p.x[r0:r1], r0)
        return np.asarray(_unit_matrix(p.unit_idx, p.n_units, dtype) @ packed)
    tot = np.zeros((p.n_units, e), dtype=dtype)
    for r0, r1 in _row_chunks(n, max(1, e // 4)):  # chunks of a quarter million values
        ui = p.unit_idx[r0:r1]
        starts = np.flatnonzero(np.concatenate([[True], ui[1:] != ui[:-1]]))
        if r1 - r0 < SPARSE_MIN_ROWS:  # a small table: no scipy to import (a command's start-up, #21)
            tot[ui[starts]] += np.add.reduceat(per_row(p.x[r0:r1], r0), starts, axis=0, dtype=dtype)
            continue
        import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up

        # the chunk's units are ui[0]..ui[-1], each with a run of rows: one sparse (units x rows)
        # product sums the runs (a third of np.add.reduceat's time over runs of a few rows, #21); a
        # unit cut by the chunk's end is added to twice: integers, so exact
        ind = sp.csr_matrix((np.ones(r1 - r0, dtype=dtype), np.arange(r1 - r0, dtype=np.intp),
                             np.append(starts, r1 - r0).astype(np.intp)), shape=(starts.size, r1 - r0))
        tot[int(ui[0]) : int(ui[0]) + starts.size] += ind @ per_row(p.x[r0:r1], r0).astype(dtype, copy=False)
    return tot


def _moment_terms(st: _UnitStats, codes: npt.NDArray[np.integer]) -> FloatArray:
    """Per packed unit code: [pairable, q/(m-1), m, s1, s2] (last three zero if not pairable).

    q = sum over ordered pairs of ratings of (c_i - c_j)**2 = 2 (m s2 - s1**2).
    """
    m, s1, s2 = st.unpack(codes)
    pair = m >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        wq = np.where(pair, 2.0 * (m * s2 - s1 * s1) / np.where(pair, m - 1.0, 1.0), 0.0)
    pf = pair.astype(np.float64)
    return np.stack([pf, wq, pf * m, pf * s1, pf * s2], axis=-1)


@dataclass
class _MomentSums:
    """Exact integer sums over pairable units, per emotion, that determine interval alpha.

    ``qm[e, k]`` is the sum of q = 2 (m s2 - s1**2) over pairable units with exactly k ratings
    (k = 0, 1 are always 0). D_o's numerator is sum_k qm[e, k] / (k - 1), accumulated in
    ascending k, so any two ways of arriving at the same integers give bit-identical alphas
    (``alpha`` on a subset, the leave-one-out shortcut and the strata all rely on this).
    """

    n_units: I64Array
    n: I64Array
    t1: I64Array
    t2: I64Array
    qm: FloatArray  # integral values (exact: partial sums stay far below 2**53)


def _moment_int_sums(m: I64Array, s1: I64Array, s2: I64Array) -> _MomentSums:
    """``_MomentSums`` from per-unit integer moments of shape (E, U)."""
    e = m.shape[0]
    pair = m >= 2
    mp = np.where(pair, m, 0)
    p1 = np.where(pair, s1, 0)
    q = 2 * (mp * s2 - p1 * s1)
    m_max = int(mp.max()) if mp.size else 0
    key = mp + (m_max + 1) * np.arange(e, dtype=np.int64)[:, None]
    hist = np.bincount(key.ravel(), weights=q.ravel(), minlength=(m_max + 1) * e)
    qm: FloatArray = hist.reshape(e, m_max + 1).astype(np.float64, copy=False)
    return _MomentSums(
        pair.sum(axis=1).astype(np.int64),
        mp.sum(axis=1),
        p1.sum(axis=1),
        np.where(pair, s2, 0).sum(axis=1),
        qm,
    )


def _packed_int_sums(st: _UnitStats, keep: BoolArray | None = None) -> _MomentSums:
    """``_MomentSums`` of the units in ``keep`` (all when None), via a histogram of packed codes
    when the codes are few (the same integers as ``_moment_int_sums``, faster)."""
    assert st.packed is not None
    tot = st.packed if keep is None else st.packed[keep]
    u, e = tot.shape
    top = int(tot.max()) + 1 if tot.size else 1
    if top > 4 * u + 4096:
        m, s1, s2 = st.moment_ints()
        if keep is None:
            return _moment_int_sums(m, s1, s2)
        return _moment_int_sums(m[:, keep], s1[:, keep], s2[:, keep])
    return _hist_int_sums(_code_hist(tot, top), st.b1, st.b2)


def _code_hist(tot: npt.NDArray[np.integer], top: int) -> I64Array:
    """(E, top) counts of each packed code per emotion, a chunk of units at a time (no (U, E) int64
    table of keys: 320 MB at a million units)."""
    u, e = tot.shape
    hist = np.zeros(top * e, dtype=np.int64)
    offset = top * np.arange(e, dtype=np.int64)
    step = max(1, max(1 << 20, top * e) // max(e, 1))  # chunks worth a bincount of top * e bins
    for u0 in range(0, u, step):
        hist += np.bincount((tot[u0 : u0 + step].astype(np.int64) + offset).ravel(), minlength=top * e)
    return hist.reshape(e, top)


def _hist_int_sums(hist: I64Array, b1: int, b2: int) -> _MomentSums:
    """``_MomentSums`` from the (E, top) counts of packed codes per emotion (``_code_hist``)."""
    st = _UnitStats("moments", b1=b1, b2=b2)
    used = np.flatnonzero(hist.any(axis=0))
    hist = hist[:, used]
    c = used.astype(np.int64)
    m = c & ((1 << st.b1) - 1)
    s1 = (c >> st.b1) & ((1 << (st.b2 - st.b1)) - 1)
    s2 = c >> st.b2
    pair = m >= 2
    m_max = int(m[pair].max()) if bool(pair.any()) else 0
    table = np.stack([pair, m * pair, s1 * pair, s2 * pair], axis=1).astype(np.int64)
    qtab = np.zeros((c.size, m_max + 1), dtype=np.int64)
    qtab[np.flatnonzero(pair), m[pair]] = 2 * (m * s2 - s1 * s1)[pair]
    sums = hist @ table
    return _MomentSums(sums[:, 0], sums[:, 1], sums[:, 2], sums[:, 3], (hist @ qtab).astype(np.float64))


def _moment_results(level: Level, ms: _MomentSums, scale: float) -> list[AlphaResult]:
    do_num = np.zeros(ms.n.size)
    for k in range(2, ms.qm.shape[1]):
        do_num = do_num + ms.qm[:, k] / (k - 1)
    de_num = 2 * (ms.n * ms.t2 - ms.t1 * ms.t1)
    return _finish(
        level,
        ms.n_units.astype(np.float64),
        ms.n.astype(np.float64),
        do_num,
        de_num.astype(np.float64),
        scale,
    )


def _count_stats(p: _Prepared) -> _UnitStats:
    codes = p.get_codes()
    v = p.dom.size
    counts: list[FloatArray] = []
    ms: list[FloatArray] = []
    base = p.unit_idx * v
    for j in range(p.n_emotions):
        cj = codes[:, j]
        sel = cj >= 0
        key = base[sel] + cj[sel] if not bool(sel.all()) else base + cj
        c = np.bincount(key, minlength=p.n_units * v).reshape(p.n_units, v).astype(np.float64)
        counts.append(c)
        ms.append(c.sum(axis=1))
    m = np.stack(ms, axis=1) if ms else np.zeros((p.n_units, 0))
    return _UnitStats("counts", m=m, counts=counts)


def _unit_stats(p: _Prepared) -> _UnitStats:
    if p.level == "interval" and p.dom.step > 0:
        st = _moment_stats(p)
        if st is not None:
            return st
    return _count_stats(p)


def _ordinal_positions(n_c: FloatArray) -> FloatArray:
    """Krippendorff's ordinal metric as positions: d(c,k) = (t_k - t_c)**2 with midranks t."""
    cum = np.cumsum(n_c, axis=-1)
    return cum - n_c / 2.0 - cum[..., -1:] / 2.0  # centred for numerical safety


def _fixed_distance(level: Level, dom: _Domain) -> FloatArray:
    vals = dom.values
    a = vals[:, None]
    b = vals[None, :]
    if level == "nominal":
        return np.asarray(a != b, dtype=np.float64)
    if level == "interval":
        return np.asarray((a - b) ** 2, dtype=np.float64)
    if level == "ratio":
        s = a + b
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(s != 0, ((a - b) / np.where(s != 0, s, 1.0)) ** 2, 0.0)
        return np.asarray(d, dtype=np.float64)
    raise ValueError("the ordinal metric depends on the marginals")  # pragma: no cover


def _finish(
    level: Level, n_units: FloatArray, n: FloatArray, do_num: FloatArray, de_num: FloatArray, scale: float
) -> list[AlphaResult]:
    """Build results from D_o numerator sum_u q_u/(m_u-1) and D_e numerator sum n_c n_k d_ck."""
    out: list[AlphaResult] = []
    for j in range(n.size):
        nu, nv = int(n_units[j]), int(n[j])
        if nu == 0:
            out.append(AlphaResult(None, REASON_NO_PAIRABLE, level, 0, 0, None, None))
            continue
        d_o = float(do_num[j]) / nv * scale
        d_e = float(de_num[j]) / (nv * (nv - 1)) * scale
        if de_num[j] <= 0:
            out.append(AlphaResult(None, REASON_NO_VARIATION, level, nu, nv, d_o, 0.0))
            continue
        a = 1.0 - (nv - 1) * float(do_num[j]) / float(de_num[j])
        out.append(AlphaResult(a, None, level, nu, nv, d_o, d_e))
    return out


def _alpha_from_stats(p: _Prepared, st: _UnitStats) -> list[AlphaResult]:
    if st.kind == "moments":
        return _moment_results(p.level, _packed_int_sums(st), p.dom.step**2)
    assert st.m is not None
    m = st.m
    pair = m >= 2
    n_units = pair.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(pair, 1.0 / np.where(pair, m - 1.0, 1.0), 0.0)
    assert st.counts is not None
    e = p.n_emotions
    do_num = np.zeros(e)
    de_num = np.zeros(e)
    n = np.zeros(e)
    d_fixed = None if p.level == "ordinal" else _fixed_distance(p.level, p.dom)
    for j, c in enumerate(st.counts):
        n_c = c[pair[:, j]].sum(axis=0)
        if d_fixed is None:
            t = _ordinal_positions(n_c)
            d = (t[:, None] - t[None, :]) ** 2
        else:
            d = d_fixed
        q = np.einsum("uc,uc->u", c @ d, c)
        do_num[j] = float(w[:, j] @ q)
        de_num[j] = float(n_c @ d @ n_c)
        n[j] = n_c.sum()
    return _finish(p.level, n_units, n, do_num, de_num, 1.0)
