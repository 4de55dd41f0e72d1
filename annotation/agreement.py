"""Inter-annotator agreement statistics for emorate (pure: stdlib, numpy and scipy only).

Everything here works on a *long table* of ratings: parallel 1-D arrays ``units`` (image ids),
``raters`` (rater ids) and a value array ``values2d`` of shape ``(n_ratings, n_emotions)`` where
row ``i`` holds the ratings rater ``raters[i]`` gave image ``units[i]`` and NaN marks a missing
rating. No dense raters x images matrix is ever built: Krippendorff's alpha is computed from
per-unit value counts (the coincidence-matrix form of Krippendorff 2011), vectorised over all
emotions at once, and the bootstrap over units reduces to one matrix product of resample weights
with per-unit statistics. ``docs/agreement.md`` defines every figure produced here.

Contracts shared by the functions below:

* ``units`` and ``raters`` are 1-D arrays (ints or strings) with one entry per row of ``values2d``.
* ``domain`` is the ordered value domain of the scale, e.g. ``scale_domain(7) == (0, 1, ..., 7)``.
  Every non-NaN value must be an element of it (``ValueError`` otherwise). ``None`` means "the
  distinct observed values" (as in the ``krippendorff`` package); the platform always passes the
  project's scale so that unused scale points keep their place.
* Each (unit, rater) pair may occur in at most one row (``ValueError`` naming it otherwise).
* Undefined statistics are ``None`` together with a ``reason`` string; nothing returns NaN.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]
from scipy import stats  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "SnapshotStats",
    "AlphaResult",
    "AnnotatorTest",
    "BinaryAgreement",
    "EmotionAgreement",
    "Level",
    "NonzeroShare",
    "PairKappa",
    "RaterAgreement",
    "SpearmanResult",
    "StratumAlpha",
    "agreement_report",
    "alpha",
    "alpha_all",
    "alpha_by_stratum",
    "annotator_test",
    "binary_agreement",
    "bootstrap_alphas",
    "bootstrap_ci",
    "candidate_test",
    "nonzero_shares",
    "pairwise_kappas",
    "quadratic_kappa",
    "rater_agreement",
    "resample_indices",
    "scale_domain",
    "snapshot_stats",
    "spearman_vs_median",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")
Id = int | str

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
I64Array = npt.NDArray[np.int64]

REASON_NO_PAIRABLE = "no unit has two or more ratings, so no pair of ratings can be compared"
REASON_NO_VARIATION = "no variation: every pairable rating has the same value, alpha is 0/0"
REASON_NO_DEFINED_RESAMPLE = "no bootstrap resample gave a defined alpha"
CONDITIONAL_DESIGN_WARNING = (
    "alpha is biased by the conditional design itself: another rater was added only while all "
    "earlier raters said yes, so which units receive two or more votes depends on the votes; "
    "read alpha together with the vote-pattern table"
)

# Row chunk for the streaming pass over values2d: small enough that temporaries stay in cache.
_ROW_CHUNK_VALUES = 1 << 16
# Upper bound on resample-weight matrix entries held at once (B_chunk * n_units).
_BOOT_CHUNK_ENTRIES = 1 << 23


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha for one variable (one emotion).

    ``alpha`` is ``None`` exactly when ``reason`` is set. ``n_units``/``n_values`` count the
    pairable units (two or more ratings) and the ratings in them. ``observed_disagreement`` (D_o)
    and ``expected_disagreement`` (D_e) are in the squared units of the level's metric, with
    ``alpha = 1 - D_o / D_e``.
    """

    alpha: float | None
    reason: str | None
    level: Level
    n_units: int
    n_values: int
    observed_disagreement: float | None
    expected_disagreement: float | None


@dataclass(frozen=True)
class NonzeroShare:
    """Share of non-zero ratings for one emotion, with the zero-inflation warning."""

    emotion: int
    n_ratings: int
    n_nonzero: int
    nonzero_share: float | None
    warning: str | None


@dataclass(frozen=True)
class EmotionAgreement:
    """One emotion's line of an agreement report (see ``agreement_report``)."""

    emotion: int
    alpha: AlphaResult
    ci_low: float | None
    ci_high: float | None
    confidence: float
    n_boot: int
    nonzero: NonzeroShare
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class PairKappa:
    """Quadratic-weighted Cohen's kappa of two raters on one emotion (``rater_a`` < ``rater_b``)."""

    emotion: int
    rater_a: Id
    rater_b: Id
    n_common: int
    kappa: float | None
    reason: str | None


@dataclass(frozen=True)
class RaterAgreement:
    """How one rater agrees with the others on one emotion.

    ``mean_kappa`` is the mean of the rater's defined pairwise kappas with every other rater;
    ``alpha_with`` is alpha over all raters and ``alpha_without`` alpha after removing this rater,
    so ``alpha_without > alpha_with`` means the rater lowers agreement.
    """

    rater: Id
    emotion: int
    n_kappas: int
    mean_kappa: float | None
    alpha_with: float | None
    alpha_without: float | None


@dataclass(frozen=True)
class AnnotatorTest:
    """EmoNet-Face "could be an annotator" test (two-sided Mann-Whitney U)."""

    n_candidate: int
    n_human: int
    u_statistic: float | None
    p_value: float | None
    could_be_annotator: bool | None
    verdict: str
    candidate_median: float | None
    human_median: float | None


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman rho between model scores and the per-image median expert rating of one emotion."""

    emotion: int
    n: int
    rho: float | None
    p_value: float | None
    reason: str | None


@dataclass(frozen=True)
class StratumAlpha:
    """Alpha of one emotion within one demographic stratum."""

    emotion: int
    stratum: Id
    alpha: AlphaResult
    ci_low: float | None
    ci_high: float | None
    reliable: bool
    note: str | None


@dataclass(frozen=True)
class BinaryAgreement:
    """Binary-mode agreement of one emotion: nominal alpha plus the vote-pattern table.

    ``patterns`` maps ``"yes:no"`` (e.g. ``"3:0"``, ``"2:1"``) to the number of units with two or
    more votes showing that pattern, ordered by number of votes, then yes votes, descending.
    """

    emotion: int
    alpha: AlphaResult
    n_units_multi: int
    patterns: dict[str, int] = field(hash=False)
    warning: str | None


# --------------------------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------------------------


def scale_domain(scale_max: int) -> tuple[int, ...]:
    """The value domain of an intensity scale 0..scale_max (e.g. 7, or 2 for EmoNet-Voice)."""
    if scale_max < 1:
        raise ValueError(f"scale_max must be at least 1, got {scale_max}")
    return tuple(range(scale_max + 1))


def _as_1d(name: str, arr: npt.ArrayLike) -> npt.NDArray[np.generic]:
    out = np.asarray(arr)
    if out.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {out.shape}")
    return out


def _as_values2d(values2d: npt.ArrayLike, n_rows: int) -> FloatArray:
    x = np.asarray(values2d, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n_rows:
        raise ValueError(f"values2d must have shape (n_ratings={n_rows}, n_emotions), got {x.shape}")
    return np.ascontiguousarray(x)


def _factorize(ids: npt.NDArray[np.generic]) -> tuple[IntArray, npt.NDArray[np.generic]]:
    """Map ids to 0..K-1 in ascending id order; returns (codes, unique ids)."""
    if ids.dtype.kind in "iu" and ids.size:
        lo = int(ids.min())
        hi = int(ids.max())
        if lo >= 0 and hi < 4 * ids.size + 1024:
            # O(n) factorisation for compact non-negative integer ids (the usual case).
            present = np.bincount(ids.astype(np.intp, copy=False), minlength=hi + 1) > 0
            rank = np.cumsum(present, dtype=np.intp) - 1
            return rank[ids], np.flatnonzero(present).astype(ids.dtype)
    uniq, inv = np.unique(ids, return_inverse=True)
    return inv.astype(np.intp, copy=False).reshape(-1), uniq


def _check_duplicates(
    unit_idx: IntArray, unit_ids: npt.NDArray[np.generic], raters: npt.NDArray[np.generic]
) -> tuple[IntArray, npt.NDArray[np.generic]]:
    """Raise ValueError naming the first duplicate (unit, rater) pair; returns rater codes."""
    rater_idx, rater_ids = _factorize(raters)
    n_raters = max(int(rater_ids.size), 1)
    key = unit_idx.astype(np.int64) * n_raters + rater_idx
    n_keys = int(unit_ids.size) * n_raters
    if n_keys <= 4 * key.size + (1 << 20):
        dup_keys = np.flatnonzero(np.bincount(key, minlength=n_keys) > 1)
    else:
        s = np.sort(key)
        dup_keys = s[1:][s[1:] == s[:-1]]
    if dup_keys.size:
        k = int(dup_keys[0])
        u, r = divmod(k, n_raters)
        raise ValueError(
            f"duplicate rating: unit {unit_ids[u].item()!r} is rated more than once by rater "
            f"{rater_ids[r].item()!r}; each (unit, rater) pair must occur in one row only"
        )
    return rater_idx, rater_ids


@dataclass(frozen=True)
class _Domain:
    values: FloatArray  # sorted, strictly increasing
    start: float
    step: float  # > 0 when the domain is an arithmetic progression, else 0.0

    @property
    def size(self) -> int:
        return int(self.values.size)


def _make_domain(domain: Sequence[float] | None, x: FloatArray) -> _Domain:
    if domain is None:
        vals = np.unique(x[~np.isnan(x)])
        if vals.size == 0:
            vals = np.zeros(1)
    else:
        vals = np.asarray(domain, dtype=np.float64).reshape(-1)
        if vals.size == 0 or not np.all(np.isfinite(vals)):
            raise ValueError(f"domain must be a non-empty sequence of finite numbers, got {domain!r}")
        if vals.size > 1 and not np.all(np.diff(vals) > 0):
            raise ValueError(f"domain must be strictly increasing, got {domain!r}")
    start = float(vals[0])
    step = 0.0
    if vals.size == 1:
        step = 1.0
    else:
        cand = float(vals[1] - vals[0])
        if np.array_equal(vals, start + cand * np.arange(vals.size)):
            step = cand
    return _Domain(values=vals, start=start, step=step)


def _bad_value_error(x: FloatArray, dom: _Domain, row0: int) -> ValueError:
    ok = np.isnan(x) | np.isin(x, dom.values)
    i, j = np.argwhere(~ok)[0]
    vals = [f"{v:g}" for v in dom.values.tolist()]
    shown = "{" + ", ".join(vals) + "}" if len(vals) <= 12 else f"{{{vals[0]}, ..., {vals[-1]}}}"
    return ValueError(
        f"values2d[{row0 + int(i)}, {int(j)}] = {float(x[i, j])!r} is not in the value domain {shown} "
        "(NaN marks a missing rating)"
    )


def _encode_chunk(xc: FloatArray, dom: _Domain, row0: int) -> npt.NDArray[np.int16]:
    """Domain indices (int16) of a chunk of values; -1 marks missing. Validates every value."""
    v = dom.size
    if dom.step > 0:
        y = xc if (dom.start == 0.0 and dom.step == 1.0) else (xc - dom.start) / dom.step
        with np.errstate(invalid="ignore"):
            ii = y.astype(np.int16)
        ok = ii == y
        n_ok = int(np.count_nonzero(ok))
        if n_ok == xc.size:
            if ii.size and (int(ii.min()) < 0 or int(ii.max()) > v - 1):
                raise _bad_value_error(xc, dom, row0)
            return ii
        n_nan = int(np.count_nonzero(np.isnan(xc)))
        codes = np.where(ok, ii, np.int16(-1))
        if n_ok + n_nan != xc.size or int(np.count_nonzero(codes < 0)) != n_nan or int(codes.max()) > v - 1:
            raise _bad_value_error(xc, dom, row0)
        return codes
    pos = np.searchsorted(dom.values, xc)
    nan = np.isnan(xc)
    posc = np.minimum(pos, v - 1)
    ok = dom.values[posc] == xc
    if not np.all(ok | nan):
        raise _bad_value_error(xc, dom, row0)
    return np.where(nan, -1, posc).astype(np.int16)


def _row_chunks(n_rows: int, n_cols: int) -> list[tuple[int, int]]:
    step = max(1, _ROW_CHUNK_VALUES // max(n_cols, 1))
    return [(r, min(r + step, n_rows)) for r in range(0, n_rows, step)]


def _encode(x: FloatArray, dom: _Domain) -> npt.NDArray[np.int16]:
    if dom.size > 32000:
        raise ValueError(f"the value domain has {dom.size} values; at most 32000 are supported")
    out = np.empty(x.shape, dtype=np.int16)
    for r0, r1 in _row_chunks(x.shape[0], x.shape[1]):
        out[r0:r1] = _encode_chunk(x[r0:r1], dom, r0)
    return out


def _unit_matrix(unit_idx: IntArray, n_units: int, dtype: npt.DTypeLike) -> sp.csc_matrix:
    """Sparse (n_units x n_rows) 0/1 matrix; ``M @ X`` sums the rows of X per unit."""
    n = unit_idx.size
    rows = sp.csr_matrix(
        (np.ones(n, dtype=dtype), unit_idx, np.arange(n + 1, dtype=np.intp)), shape=(n, n_units)
    )
    return rows.T


# --------------------------------------------------------------------------------------------
# Per-unit statistics (the core)
# --------------------------------------------------------------------------------------------


@dataclass
class _Prepared:
    """Validated long table: unit codes, domain and the per-emotion encoded values."""

    unit_idx: IntArray
    unit_ids: npt.NDArray[np.generic]
    n_units: int
    dom: _Domain
    level: Level
    x: FloatArray
    rows_per_unit: IntArray
    codes: npt.NDArray[np.int16] | None = None

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
    x = _as_values2d(values2d, u.size)
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
    n, e = p.x.shape
    packed = np.empty((n, e), dtype=dtype)
    lut = np.array([1 + (c << b1) + ((c * c) << (b1 + bs1)) for c in range(v)] + [0], dtype=dtype)
    for r0, r1 in _row_chunks(n, e):
        # index -1 (missing) picks the trailing 0 of the table
        np.take(lut, _encode_chunk(p.x[r0:r1], p.dom, r0), out=packed[r0:r1])
    tot = _unit_matrix(p.unit_idx, p.n_units, dtype) @ packed
    return _UnitStats("moments", packed=np.asarray(tot), b1=b1, b2=b1 + bs1)


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
    key = tot.astype(np.int64) + top * np.arange(e, dtype=np.int64)
    hist = np.bincount(key.ravel(), minlength=top * e).reshape(e, top)
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


# --------------------------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------------------------


def alpha_all(
    units: npt.ArrayLike,
    raters: npt.ArrayLike | None,
    values2d: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
) -> list[AlphaResult]:
    """Krippendorff's alpha for every column (emotion) of ``values2d``, vectorised.

    ``values2d`` has shape (n_ratings, n_emotions), NaN = missing. ``raters`` (or ``None`` to
    skip the check) is only used to reject duplicate (unit, rater) rows.
    """
    p = _prepare(units, values2d, level=level, domain=domain, raters=raters)
    return _alpha_from_stats(p, _unit_stats(p))


def alpha(
    units: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    raters: npt.ArrayLike | None = None,
) -> AlphaResult:
    """Krippendorff's alpha of one variable from 1-D arrays of equal length (NaN = missing)."""
    v = _as_1d("values", np.asarray(values, dtype=np.float64))
    return alpha_all(units, raters, v[:, None], level=level, domain=domain)[0]


# --------------------------------------------------------------------------------------------
# Bootstrap over units
# --------------------------------------------------------------------------------------------


def _boot_chunk(n_units: int, n_boot: int) -> int:
    return max(1, min(n_boot, _BOOT_CHUNK_ENTRIES // max(n_units, 1)))


def resample_indices(n_units: int, n_boot: int, seed: int) -> IntArray:
    """The unit indices (shape (n_boot, n_units)) drawn by ``bootstrap_alphas`` for this seed.

    Units are indexed in ascending id order. Exposed so reports can be audited and tests can
    replay the very same resamples through a naive loop.
    """
    rng = np.random.default_rng(seed)
    step = _boot_chunk(n_units, n_boot)
    parts = [
        rng.integers(0, n_units, size=(min(step, n_boot - b0), n_units), dtype=np.intp)
        for b0 in range(0, n_boot, step)
    ]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, n_units), dtype=np.intp)


def _boot_features(p: _Prepared, st: _UnitStats) -> tuple[FloatArray, int]:
    """Per-unit columns whose resample-weighted sums determine alpha; returns (F, cols/emotion)."""
    if st.kind == "moments":
        assert st.packed is not None
        u, e = st.packed.shape
        f = _moment_terms(st, st.packed)[..., 1:]  # [q/(m-1), m, s1, s2] when pairable
        return np.ascontiguousarray(f.reshape(u, e * 4)), 4
    assert st.m is not None
    m = st.m
    pair = m >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(pair, 1.0 / np.where(pair, m - 1.0, 1.0), 0.0)
    u, e = m.shape
    assert st.counts is not None
    v = p.dom.size
    cols: list[FloatArray] = []
    if p.level == "ordinal":
        iu, ju = np.triu_indices(v, k=1)
        k = v + iu.size
        for j, c in enumerate(st.counts):
            cols.append(c * pair[:, j : j + 1])
            cols.append(c[:, iu] * c[:, ju] * w[:, j : j + 1])
    else:
        d = _fixed_distance(p.level, p.dom)
        k = v + 1
        for j, c in enumerate(st.counts):
            q = np.einsum("uc,uc->u", c @ d, c)
            cols.append((w[:, j] * q)[:, None])
            cols.append(c * pair[:, j : j + 1])
    f = np.concatenate(cols, axis=1) if cols else np.zeros((u, 0))
    return f, k


def _boot_alpha_from_sums(p: _Prepared, s: FloatArray, k: int, moments: bool) -> FloatArray:
    """Alpha per resample and emotion (NaN when undefined) from summed features s (b, E*k)."""
    b = s.shape[0]
    s3 = s.reshape(b, -1, k)
    if moments:
        do_num, n, t1, t2 = s3[..., 0], s3[..., 1], s3[..., 2], s3[..., 3]
        de_num = 2.0 * (n * t2 - t1 * t1)
    elif p.level == "ordinal":
        v = p.dom.size
        n_c = s3[..., :v]
        o_up = s3[..., v:]
        t = _ordinal_positions(n_c)
        iu, ju = np.triu_indices(v, k=1)
        do_num = 2.0 * np.einsum("bek,bek->be", o_up, (t[..., ju] - t[..., iu]) ** 2)
        diff2 = (t[..., :, None] - t[..., None, :]) ** 2
        de_num = np.einsum("bec,becd,bed->be", n_c, diff2, n_c)
        n = n_c.sum(axis=-1)
    else:
        d = _fixed_distance(p.level, p.dom)
        do_num = s3[..., 0]
        n_c = s3[..., 1:]
        de_num = np.einsum("bec,cd,bed->be", n_c, d, n_c)
        n = n_c.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = 1.0 - (n - 1.0) * do_num / de_num
    # Undefined resamples: no pairable value or no variation (D_e numerator 0).
    return np.where((de_num > 0) & (n >= 2), a, np.nan)


# float32 products and sums of integers are exact while every partial sum stays below 2**24.
_F32_EXACT = float(1 << 24)
# Seed tag of the extension streams of within-stratum resamples (see _run_bootstrap).
_EXTENSION_TAG = 0x57A7A


@dataclass
class _BootPlan:
    """Bootstrap features of a prepared table, transposed and de-duplicated, plus a ones row.

    ``ft`` has shape (n_cols, U): ``ft[col_map].T`` is ``_boot_features`` and the trailing row of
    ones makes the resample-weighted sums also count the draws. ``exact32`` when every feature
    is an integer small enough that float32 block products are exact (checked per block and
    resample at run time, with a float64 redo where the bound does not hold).
    """

    ft: FloatArray
    col_map: IntArray
    k: int
    moments: bool
    exact32: bool
    block: int

    _rows: npt.NDArray[np.floating] | None = None

    @property
    def n_cols(self) -> int:
        return int(self.ft.shape[0])

    def rows(self) -> npt.NDArray[np.floating]:
        """``ft.T`` as a C-ordered (U, n_cols) copy, for gathering the features of single units
        (float32 when exact: the sums over a few thousand draws stay far below 2**24)."""
        if self._rows is None:
            self._rows = np.ascontiguousarray(self.ft.T, dtype=np.float32 if self.exact32 else np.float64)
        return self._rows


def _boot_features_t(p: _Prepared, st: _UnitStats) -> tuple[FloatArray, int]:
    """``_boot_features`` transposed, shape (E*k, U), built without the (U, E*k) detour for moments."""
    if st.kind != "moments":
        f, k = _boot_features(p, st)
        return np.ascontiguousarray(f.T), k
    m, s1, s2 = st.moment_ints()
    e, u = m.shape
    pair = m >= 2
    ft = np.empty((e, 4, u))
    with np.errstate(divide="ignore", invalid="ignore"):
        ft[:, 0] = np.where(pair, 2 * (m * s2 - s1 * s1) / np.where(pair, m - 1, 1), 0.0)
    ft[:, 1] = np.where(pair, m, 0)
    ft[:, 2] = np.where(pair, s1, 0)
    ft[:, 3] = np.where(pair, s2, 0)
    return ft.reshape(e * 4, u), 4


def _boot_plan(p: _Prepared, st: _UnitStats) -> _BootPlan:
    full, k = _boot_features_t(p, st)
    n_full, u = full.shape
    # Identical columns (e.g. the rating count of every emotion when nothing is missing) are
    # multiplied once: group by a random projection, confirm with an exact comparison.
    probe = np.random.default_rng(20240917).standard_normal(u)
    fp = full @ probe if u else np.zeros(n_full)
    keep: list[int] = []
    col_map = np.empty(n_full, dtype=np.intp)
    groups: dict[float, list[int]] = {}
    for j in range(n_full):
        cand = groups.setdefault(float(fp[j]), [])
        for c in cand:
            if np.array_equal(full[keep[c]], full[j]):
                col_map[j] = c
                break
        else:
            cand.append(len(keep))
            col_map[j] = len(keep)
            keep.append(j)
    ft = np.empty((len(keep) + 1, u))
    ft[:-1] = full[keep]
    ft[-1] = 1.0
    max_abs = float(np.abs(ft).max()) if ft.size else 1.0
    block = int((_F32_EXACT / 2) // max(max_abs, 1.0))
    exact32 = bool(u < _F32_EXACT and block >= 1024 and np.array_equal(ft, np.rint(ft)))
    return _BootPlan(ft, col_map, k, st.kind == "moments", exact32, block)


@dataclass(frozen=True)
class _Strata:
    """A partition of the units (in unit order) into strata 0..K-1."""

    labels: IntArray  # stratum of each unit
    members: list[IntArray]  # unit indices of each stratum, ascending

    @property
    def sizes(self) -> I64Array:
        return np.array([m.size for m in self.members], dtype=np.int64)


def _make_strata(labels: IntArray, n_strata: int) -> _Strata:
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_strata))])
    return _Strata(labels, [order[bounds[j] : bounds[j + 1]] for j in range(n_strata)])


def _extension_rng(seed: int, stratum: int) -> np.random.Generator:
    """Stream of the extra draws that complete stratum ``stratum``'s resamples (see docs)."""
    return np.random.default_rng([seed, _EXTENSION_TAG, stratum])


def _drop_draws(
    idx: npt.NDArray[np.int32], strata: _Strata, excess: I64Array
) -> tuple[IntArray, IntArray, IntArray]:
    """For each resample row b and stratum j, the last ``excess[b, j]`` draws of row b that fall
    in stratum j: (rows, strata, units). Searched in a tail window that grows until it holds them."""
    nb, u = idx.shape
    if not bool((excess > 0).any()):
        e = np.zeros(0, dtype=np.intp)
        return e, e, e
    sizes = strata.sizes
    depth = float((excess.max(axis=0) * (u / np.maximum(sizes, 1))).max())
    t = int(min(u, 2 * depth + 1024))
    while True:
        tail = idx[:, u - t :]
        lab = strata.labels[tail]
        found: list[tuple[IntArray, IntArray, IntArray]] = []
        complete = True
        for j in range(sizes.size):
            need = np.maximum(excess[:, j], 0)
            rows_j = np.flatnonzero(need > 0)
            if not rows_j.size:
                continue
            r, c = np.nonzero(lab[rows_j] == j)  # row-major: each row's hits in draw order
            have = np.bincount(r, minlength=rows_j.size)
            if t < u and bool((have < need[rows_j]).any()):
                complete = False
                break
            # keep hit k of its row (0-based) when k >= have - need: the row's last `need` hits
            first = np.cumsum(have) - have
            k = np.arange(r.size) - first[r]
            sel = k >= (have - need[rows_j])[r]
            rr = rows_j[r[sel]]
            found.append((rr, np.full(rr.size, j, dtype=np.intp), tail[rr, c[sel]].astype(np.intp)))
        if complete:
            break
        t = min(u, 4 * t)
    return tuple(np.concatenate([f[i] for f in found]) for i in range(3))  # type: ignore[return-value]


def _run_bootstrap(
    p: _Prepared,
    plan: _BootPlan,
    n_boot: int,
    seed: int,
    keys: Sequence[_Strata] = (),
    *,
    want_main: bool = True,
) -> tuple[FloatArray | None, list[list[FloatArray]]]:
    """Alpha replicates of the main bootstrap and of within-stratum bootstraps, from one set of draws.

    Main resample b is row b of ``resample_indices(n_units, n_boot, seed)``. For each partition in
    ``keys``, stratum j's resample b is the first n_j draws of main resample b that fall in the
    stratum, completed (when fewer than n_j fall there) by draws uniform over the stratum from
    ``_extension_rng(seed, j)``: main draws are iid uniform over all units, so those landing in a
    stratum are iid uniform over it and this is an ordinary resample of the stratum's n_j units.

    The resample weights are built once per chunk of resamples, with units ordered by their cell
    (the combination of their strata over all keys), and multiplied with the features one cell
    block at a time; every main and stratum sum is then a sum of cell sums, plus the few drawn
    beyond or short of n_j in each stratum. Returns (main (n_boot, E) or None, per key a list
    over strata of (n_boot, E)); NaN marks an undefined replicate.
    """
    u = p.n_units
    e = p.n_emotions
    main = np.full((n_boot, e), np.nan) if want_main else None
    per_key = [[np.full((n_boot, e), np.nan) for _ in k.members] for k in keys]
    if u == 0:
        return main, per_key
    # Cells: units grouped by their combination of strata.
    if keys:
        combo = np.zeros(u, dtype=np.int64)
        for k in keys:
            combo = combo * len(k.members) + k.labels
        cell, _ = _factorize(combo)
        order = np.argsort(cell, kind="stable")
        rank = np.empty(u, dtype=np.int32)
        rank[order] = np.arange(u, dtype=np.int32)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(cell))]).astype(np.intp)
        ft_cells = plan.ft[:, order]
        # onehot[c, j] = 1 when cell c lies in stratum j of the key
        onehots = [np.eye(len(k.members))[k.labels[order[bounds[:-1]]]] for k in keys]
    else:
        rank = None
        bounds = np.array([0, u], dtype=np.intp)
        ft_cells = plan.ft
        onehots = []
    n_cells = bounds.size - 1
    width = plan.block if plan.exact32 else u
    blocks: list[tuple[int, int, int, float]] = []
    for c in range(n_cells):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        for a in range(lo, hi, width):
            b = min(a + width, hi)
            blocks.append((c, a, b, float(np.abs(ft_cells[:, a:b]).max())))
    f32 = ft_cells.astype(np.float32) if plan.exact32 else None
    ext = [[_extension_rng(seed, j) for j in range(len(k.members))] for k in keys]
    n_out = (1 if want_main else 0) + sum(len(k.members) for k in keys)
    rng = np.random.default_rng(seed)
    step = max(1, min(n_boot, _BOOT_CHUNK_ENTRIES // u))
    w32 = np.empty((step, u), dtype=np.float32)
    ones = plan.n_cols - 1
    for b0 in range(0, n_boot, step):
        nb = min(step, n_boot - b0)
        # The same stream as resample_indices (integers are drawn in the same order whatever the chunking).
        idx = rng.integers(0, u, size=(nb, u), dtype=np.int32)
        pidx = idx if rank is None else rank[idx]
        for i in range(nb):
            w32[i] = np.bincount(pidx[i], minlength=u)
        w = w32[:nb]
        w64 = None if f32 is not None else w.astype(np.float64)
        cs = np.zeros((n_cells, nb, plan.n_cols))
        for c, lo, hi, top in blocks:
            if f32 is not None:
                part = np.matmul(w[:, lo:hi], f32[:, lo:hi].T).astype(np.float64)
                bad = part[:, ones] * top >= _F32_EXACT
                if bool(bad.any()):
                    part[bad] = w[bad, lo:hi].astype(np.float64) @ ft_cells[:, lo:hi].T
            else:
                assert w64 is not None
                part = w64[:, lo:hi] @ ft_cells[:, lo:hi].T
            cs[c] += part
        outs: list[FloatArray] = []
        if want_main:
            outs.append(cs.sum(axis=0)[:, None, :])
        for ki, key in enumerate(keys):
            outs.append(_stratum_sums(plan, key, ext[ki], idx, np.einsum("cbf,cj->bjf", cs, onehots[ki])))
        sums = np.concatenate(outs, axis=1).reshape(nb * n_out, plan.n_cols)
        reps = _boot_alpha_from_sums(p, sums[:, plan.col_map], plan.k, plan.moments).reshape(nb, n_out, e)
        o = 0
        if main is not None:
            main[b0 : b0 + nb] = reps[:, 0]
            o = 1
        for key_reps in per_key:
            for rep_j in key_reps:
                rep_j[b0 : b0 + nb] = reps[:, o]
                o += 1
    return main, per_key


def _stratum_sums(
    plan: _BootPlan,
    key: _Strata,
    ext: list[np.random.Generator],
    idx: npt.NDArray[np.int32],
    s_str: FloatArray,
) -> FloatArray:
    """Turn the main resamples' per-stratum sums (nb, K, cols) into within-stratum resample sums:
    take away each stratum's draws beyond n_j (its last ones in the row) and add extension draws
    where the row has fewer than n_j (see ``_run_bootstrap``)."""
    nb, n_str, n_cols = s_str.shape
    sizes = key.sizes
    diff = np.rint(s_str[:, :, -1]).astype(np.int64) - sizes
    rows, strs, units = _drop_draws(idx, key, diff)
    data = [np.full(rows.size, -1.0)]
    r_all, s_all, u_all = [rows], [strs], [units]
    short = np.maximum(-diff, 0)
    for j in range(n_str):
        tot = int(short[:, j].sum())
        if tot:
            draw = ext[j].integers(0, int(sizes[j]), size=tot, dtype=np.int64)
            r_all.append(np.repeat(np.arange(nb, dtype=np.intp), short[:, j]))
            s_all.append(np.full(tot, j, dtype=np.intp))
            u_all.append(key.members[j][draw])
            data.append(np.ones(tot))
    units_all = np.concatenate(u_all)
    if units_all.size:
        group = np.concatenate(r_all) * n_str + np.concatenate(s_all)
        pick = sp.csr_matrix(
            (np.concatenate(data), (group, np.arange(units_all.size))), shape=(nb * n_str, units_all.size)
        )
        feats = plan.rows()[units_all]
        corr = np.asarray(pick @ feats.astype(np.float64, copy=False) if not plan.exact32 else pick @ feats)
        s_str = s_str + corr.astype(np.float64).reshape(nb, n_str, n_cols)
    return s_str


def _bootstrap(p: _Prepared, st: _UnitStats, n_boot: int, seed: int) -> FloatArray:
    main, _ = _run_bootstrap(p, _boot_plan(p, st), n_boot, seed)
    assert main is not None
    return main


def _check_boot_args(n_boot: int, confidence: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")


def bootstrap_alphas(
    units: npt.ArrayLike,
    values2d: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    raters: npt.ArrayLike | None = None,
) -> FloatArray:
    """Alpha of every emotion in ``n_boot`` resamples of units (shape (n_boot, n_emotions)).

    Resample b draws ``n_units`` units with replacement (the indices of
    ``resample_indices(n_units, n_boot, seed)[b]``); a unit drawn twice counts twice. NaN marks a
    resample in which alpha is undefined.
    """
    _check_boot_args(n_boot, 0.5)
    p = _prepare(units, values2d, level=level, domain=domain, raters=raters)
    return _bootstrap(p, _unit_stats(p), n_boot, seed)


def _percentile_ci(
    reps: FloatArray, point: list[AlphaResult], confidence: float
) -> list[tuple[float | None, float | None]]:
    lo_q, hi_q = (1.0 - confidence) / 2.0, 1.0 - (1.0 - confidence) / 2.0
    out: list[tuple[float | None, float | None]] = []
    for j, res in enumerate(point):
        col = reps[:, j]
        col = col[~np.isnan(col)]
        if res.alpha is None or col.size == 0:
            out.append((None, None))
            continue
        lo, hi = np.quantile(col, [lo_q, hi_q])
        out.append((float(lo), float(hi)))
    return out


def bootstrap_ci(
    units: npt.ArrayLike,
    values2d: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    raters: npt.ArrayLike | None = None,
) -> list[tuple[float | None, float | None]]:
    """Percentile bootstrap interval (low, high) of alpha per emotion, resampling units.

    ``(None, None)`` when alpha itself is undefined or no resample gives a defined alpha.
    Undefined resamples are left out of the percentiles.
    """
    _check_boot_args(n_boot, confidence)
    p = _prepare(units, values2d, level=level, domain=domain, raters=raters)
    st = _unit_stats(p)
    point = _alpha_from_stats(p, st)
    return _percentile_ci(_bootstrap(p, st, n_boot, seed), point, confidence)


# --------------------------------------------------------------------------------------------
# Zero inflation and the whole report
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Pairwise quadratic-weighted Cohen's kappa
# --------------------------------------------------------------------------------------------


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
    order = np.lexsort((rater_idx, unit_idx))
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
    # Integer sums per (pair group, emotion): n, sum a, sum b, sum a^2, sum b^2, sum ab.
    sums = np.zeros((6, g, n_e), dtype=np.int64)
    sizes = np.diff(np.append(starts, gs.size)).astype(np.int64)
    step = max(1, (1 << 21) // max(int(gs.size), 1))
    for e0 in range(0, n_e, step):
        sl = slice(e0, min(e0 + step, n_e))
        ca = codes[i, sl].astype(np.int32)
        cb = codes[j, sl].astype(np.int32)
        if bool((ca < 0).any() or (cb < 0).any()):
            ok = (ca >= 0) & (cb >= 0)
            ca = np.where(ok, ca, 0)
            cb = np.where(ok, cb, 0)
            sums[0, :, sl] = np.add.reduceat(ok, starts, axis=0, dtype=np.int64)
        else:
            sums[0, :, sl] = sizes[:, None]
        for si, z in enumerate((ca, cb, ca * ca, cb * cb, ca * cb), start=1):
            sums[si, :, sl] = np.add.reduceat(z, starts, axis=0, dtype=np.int64)
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
    before = tot[p.unit_idx].astype(np.int64)  # (rows, E): the unit's code with every rating
    after = before - lut[p.get_codes()]  # without this row's rating (-1 = missing picks the 0)
    mark = np.zeros(top, dtype=bool)
    mark[before.ravel()] = True
    mark[after.ravel()] = True
    used = np.flatnonzero(mark)
    n_used = int(used.size)
    if n_raters * n_e * n_used > (1 << 25):
        return None
    dense = np.cumsum(mark, dtype=np.int64) - 1
    base = (rater_idx.astype(np.int64)[:, None] * n_e + np.arange(n_e, dtype=np.int64)) * n_used
    n_bins = n_raters * n_e * n_used
    h = np.bincount((base + dense[before]).ravel(), minlength=n_bins) - np.bincount(
        (base + dense[after]).ravel(), minlength=n_bins
    )
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


def _rater_agreement_from(
    p: _Prepared,
    st: _UnitStats,
    rater_idx: IntArray,
    rater_ids: npt.NDArray[np.generic],
    kappas: Sequence[PairKappa],
) -> list[RaterAgreement]:
    with_all = _alpha_from_stats(p, st)
    n_r = int(rater_ids.size)
    if st.kind == "moments":
        without = _loo_moment_results(p, st, rater_idx, n_r)
    else:
        domain = p.dom.values.tolist()
        without = []
        for ri in range(n_r):
            keep = rater_idx != ri
            without.append(alpha_all(p.unit_idx[keep], None, p.x[keep], level=p.level, domain=domain))
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


# --------------------------------------------------------------------------------------------
# "Could be an annotator" test and Spearman against the expert median
# --------------------------------------------------------------------------------------------


def _defined(xs: Sequence[float | None]) -> list[float]:
    return [float(v) for v in xs if v is not None and not math.isnan(v)]


def annotator_test(
    candidate_kappas: Sequence[float | None],
    human_kappas: Sequence[float | None],
    *,
    threshold: float = 0.05,
) -> AnnotatorTest:
    """Two-sided Mann-Whitney U between a candidate's kappas with the humans and human-human kappas.

    Verdict "could be an annotator" when p > ``threshold`` (no detectable difference), else
    "differs from the annotators". ``None``/NaN kappas are ignored; with no defined kappa on
    either side the test is undefined.
    """
    cand = _defined(candidate_kappas)
    hum = _defined(human_kappas)
    med_c = float(np.median(cand)) if cand else None
    med_h = float(np.median(hum)) if hum else None
    if not cand or not hum:
        return AnnotatorTest(
            len(cand),
            len(hum),
            None,
            None,
            None,
            "undefined: needs at least one defined kappa on each side",
            med_c,
            med_h,
        )
    res = stats.mannwhitneyu(cand, hum, alternative="two-sided")
    p = float(res.pvalue)
    could = p > threshold
    verdict = "could be an annotator" if could else "differs from the annotators"
    return AnnotatorTest(len(cand), len(hum), float(res.statistic), p, could, verdict, med_c, med_h)


def candidate_test(
    kappas: Sequence[PairKappa],
    candidate: Id,
    *,
    humans: Collection[Id] | None = None,
    emotion: int | None = None,
    threshold: float = 0.05,
) -> AnnotatorTest:
    """``annotator_test`` for one rater (or a model entered as a rater) of a pairwise-kappa list.

    Candidate sample: its kappas with each human; reference sample: kappas between humans other
    than the candidate. ``humans`` defaults to every rater in ``kappas`` except the candidate
    (pass it to exclude other models). ``emotion=None`` pools all emotions.
    """
    everyone = {pk.rater_a for pk in kappas} | {pk.rater_b for pk in kappas}
    human_set = set(humans) if humans is not None else everyone
    human_set.discard(candidate)
    cand: list[float | None] = []
    hum: list[float | None] = []
    for pk in kappas:
        if emotion is not None and pk.emotion != emotion:
            continue
        pair = {pk.rater_a, pk.rater_b}
        if candidate in pair and (pair - {candidate}) <= human_set:
            cand.append(pk.kappa)
        elif pair <= human_set:
            hum.append(pk.kappa)
    return annotator_test(cand, hum, threshold=threshold)


def _unit_medians(unit_idx: IntArray, n_units: int, col: FloatArray) -> FloatArray:
    keep = ~np.isnan(col)
    ui = unit_idx[keep]
    v = col[keep]
    order = np.lexsort((v, ui))
    ui, v = ui[order], v[order]
    cnt = np.bincount(ui, minlength=n_units)
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    med = np.full(n_units, np.nan)
    has = cnt > 0
    lo = start[has] + (cnt[has] - 1) // 2
    hi = start[has] + cnt[has] // 2
    med[has] = (v[lo] + v[hi]) / 2.0
    return med


def spearman_vs_median(
    units: npt.ArrayLike,
    values2d: npt.ArrayLike,
    model_units: npt.ArrayLike,
    model_scores2d: npt.ArrayLike,
) -> list[SpearmanResult]:
    """Spearman rho per emotion between model scores and the per-image median expert rating.

    Uses the images that have both a model score and at least one expert rating (NaN = missing
    on either side). Undefined with fewer than 3 such images or when either side is constant.
    """
    u = _as_1d("units", units)
    x = _as_values2d(values2d, u.size)
    mu = _as_1d("model_units", model_units)
    ms = _as_values2d(model_scores2d, mu.size)
    if ms.shape[1] != x.shape[1]:
        raise ValueError(f"model_scores2d has {ms.shape[1]} emotions, values2d has {x.shape[1]}")
    unit_idx, unit_ids = _factorize(u)
    if np.unique(mu).size != mu.size:
        raise ValueError("model_units must not repeat a unit: one model score row per image")
    pos = np.searchsorted(unit_ids, mu)
    pos_c = np.minimum(pos, max(unit_ids.size - 1, 0))
    known = (unit_ids.size > 0) & (unit_ids[pos_c] == mu) if unit_ids.size else np.zeros(mu.size, bool)
    out: list[SpearmanResult] = []
    for e in range(x.shape[1]):
        med = _unit_medians(unit_idx, int(unit_ids.size), x[:, e])
        hm = med[pos_c[known]]
        sc = ms[known, e]
        ok = ~(np.isnan(hm) | np.isnan(sc))
        hm, sc = hm[ok], sc[ok]
        n = int(hm.size)
        if n < 3:
            out.append(SpearmanResult(e, n, None, None, f"fewer than 3 images with both ({n})"))
            continue
        if np.all(hm == hm[0]) or np.all(sc == sc[0]):
            out.append(
                SpearmanResult(e, n, None, None, "no variance in the expert medians or the model scores")
            )
            continue
        res = stats.spearmanr(sc, hm)
        out.append(SpearmanResult(e, n, float(res.statistic), float(res.pvalue), None))
    return out


# --------------------------------------------------------------------------------------------
# Demographic strata
# --------------------------------------------------------------------------------------------


def _unit_labels(
    name: str, u: npt.NDArray[np.generic], unit_idx: IntArray, n_units: int, strata: npt.ArrayLike
) -> tuple[IntArray, npt.NDArray[np.generic]]:
    """Per-unit stratum codes of a row-aligned label array that must be constant within a unit."""
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
) -> tuple[FloatArray | None, list[list[StratumAlpha]]]:
    parts = [_make_strata(labels, int(ids.size)) for labels, ids in keys]
    main, reps = _run_bootstrap(p, _boot_plan(p, st), n_boot, seed, parts, want_main=want_main)
    out: list[list[StratumAlpha]] = []
    for (labels, ids), key_reps in zip(keys, reps, strict=True):
        rows: list[StratumAlpha] = []
        for k, label in enumerate(ids.tolist()):
            point = _subset_alpha(p, st, labels == k)
            cis = _percentile_ci(key_reps[k], point, confidence)
            for e, res in enumerate(point):
                reliable = res.alpha is not None and res.n_units >= min_units
                note = None
                if res.alpha is None:
                    note = res.reason
                elif not reliable:
                    note = f"only {res.n_units} pairable images (fewer than {min_units}): not reliable"
                rows.append(StratumAlpha(e, label, res, cis[e][0], cis[e][1], reliable, note))
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
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    raters: npt.ArrayLike | None = None,
) -> list[StratumAlpha]:
    """Alpha and bootstrap interval per emotion within each stratum of a categorical unit key.

    ``strata`` is row-aligned (the label of each row's unit, e.g. its ethnicity) and must be
    constant within a unit. A stratum's result is ``reliable`` only when alpha is defined and it
    has at least ``min_units`` pairable units for that emotion. Ordered by stratum, then emotion.
    The interval resamples units within the stratum (its size fixed); the resamples of all
    strata are cut from one set of draws (see ``docs/agreement.md``, "Strata").
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
        want_main=False,
    )
    return res[0]


# --------------------------------------------------------------------------------------------
# Everything a project snapshot needs, sharing the work
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotStats:
    """The results of ``snapshot_stats``; each field equals the corresponding single call."""

    report: list[EmotionAgreement]
    kappas: list[PairKappa]
    raters: list[RaterAgreement]
    strata: dict[str, list[StratumAlpha]] = field(hash=False)


def snapshot_stats(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    values2d: npt.ArrayLike,
    strata: Mapping[str, npt.ArrayLike] | None = None,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_units: int = 30,
    min_nonzero: int = 30,
    min_nonzero_share: float = 0.05,
) -> SnapshotStats:
    """``agreement_report``, ``pairwise_kappas``, ``rater_agreement`` and ``alpha_by_stratum`` (one
    per key of ``strata``) in one call, with identical results, sharing validation, encoding,
    per-unit statistics and one set of bootstrap draws.

    Equivalent to::

        report = agreement_report(units, raters, values2d, level=level, domain=domain,
                                  n_boot=n_boot, seed=seed, confidence=confidence,
                                  min_nonzero=min_nonzero, min_nonzero_share=min_nonzero_share)
        kappas = pairwise_kappas(units, raters, values2d, domain=D)
        raters_ = rater_agreement(units, raters, values2d, domain=D, level=level, kappas=kappas)
        strata_ = {key: alpha_by_stratum(units, values2d, labels, level=level, domain=domain,
                                         min_units=min_units, n_boot=n_boot, seed=seed,
                                         confidence=confidence, raters=raters)
                   for key, labels in strata.items()}

    where D is ``domain`` or, when ``None``, the distinct observed values.
    """
    _check_boot_args(n_boot, confidence)
    u = _as_1d("units", units)
    r = _as_1d("raters", raters)
    if r.size != u.size:
        raise ValueError(f"raters has {r.size} entries but units has {u.size}")
    p = _prepare(u, values2d, level=level, domain=domain, raters=None)
    rater_idx, rater_ids = _check_duplicates(p.unit_idx, p.unit_ids, r)
    keys = {name: _unit_labels(name, u, p.unit_idx, p.n_units, lab) for name, lab in (strata or {}).items()}
    st = _unit_stats(p)
    point = _alpha_from_stats(p, st)
    main, per_key = _strata_results(
        p,
        st,
        list(keys.values()),
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
        min_units=min_units,
        want_main=True,
    )
    assert main is not None
    report = _report_rows(p, point, main, n_boot, confidence, min_nonzero, min_nonzero_share)
    kappas = _pairwise_from(p.unit_idx, rater_idx, rater_ids, p.get_codes())
    rater_rows = _rater_agreement_from(p, st, rater_idx, rater_ids, kappas)
    return SnapshotStats(report, kappas, rater_rows, dict(zip(keys, per_key, strict=True)))


# --------------------------------------------------------------------------------------------
# Binary mode
# --------------------------------------------------------------------------------------------


def binary_agreement(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    emotions: npt.ArrayLike,
    votes: npt.ArrayLike,
    *,
    n_emotions: int,
    conditional_design: bool = False,
) -> list[BinaryAgreement]:
    """Nominal alpha on yes(1)/no(0) votes and the vote-pattern table, per emotion.

    One row per vote: image ``units[i]``, rater ``raters[i]``, emotion index ``emotions[i]``
    (0..n_emotions-1), vote ``votes[i]`` in {0, 1}. Set ``conditional_design`` when raters were
    added only while all earlier raters said yes: the result then carries a warning that alpha
    is biased by the design itself.
    """
    u = _as_1d("units", units)
    r = _as_1d("raters", raters)
    em = _as_1d("emotions", emotions)
    vt = np.asarray(_as_1d("votes", votes), dtype=np.float64)
    if not (r.size == u.size == em.size == vt.size):
        raise ValueError("units, raters, emotions and votes must have the same length")
    if not np.all((vt == 0) | (vt == 1)):
        bad = int(np.flatnonzero(~((vt == 0) | (vt == 1)))[0])
        raise ValueError(f"votes[{bad}] = {vt[bad]!r}: votes must be 0 (no) or 1 (yes)")
    em_i = np.asarray(em, dtype=np.intp)
    if em_i.size and (int(em_i.min()) < 0 or int(em_i.max()) >= n_emotions):
        raise ValueError(f"emotions must be in 0..{n_emotions - 1}")
    out: list[BinaryAgreement] = []
    for e in range(n_emotions):
        keep = em_i == e
        ue, re_, ve = u[keep], r[keep], vt[keep]
        res = alpha(ue, ve, level="nominal", domain=(0, 1), raters=re_)
        idx, _ = _factorize(ue) if ue.size else (np.zeros(0, np.intp), ue)
        total = np.bincount(idx).astype(np.intp) if ue.size else np.zeros(0, np.intp)
        yes = np.bincount(idx, weights=ve).astype(np.intp) if ue.size else np.zeros(0, np.intp)
        multi = total >= 2
        pats: dict[tuple[int, int], int] = defaultdict(int)
        for t, y in zip(total[multi].tolist(), yes[multi].tolist(), strict=True):
            pats[(t, y)] += 1
        ordered = sorted(pats.items(), key=lambda kv: (-kv[0][0], -kv[0][1]))
        table = {f"{y}:{t - y}": c for (t, y), c in ordered}
        warning = CONDITIONAL_DESIGN_WARNING if conditional_design else None
        out.append(BinaryAgreement(e, res, int(multi.sum()), table, warning))
    return out
