"""Input preparation (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]

from .constants import _ROW_CHUNK_VALUES, FloatArray, IntArray


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


def _as_table(values2d: npt.ArrayLike, n_rows: int) -> npt.NDArray[Any]:
    """``_as_values2d`` for the engine's own tables: an integer table (as read from the database,
    int8/int16, with no missing values) is kept as it is instead of becoming float64 (eight times
    the memory: 960 MB at 3,000,000 ratings x 40 emotions, #21); anything else is float64."""
    x = np.asarray(values2d)
    if x.dtype.kind not in "iu":
        return _as_values2d(x, n_rows)
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


def _make_domain(domain: Sequence[float] | None, x: npt.NDArray[Any]) -> _Domain:
    if domain is None:
        vals = np.unique(x[~np.isnan(x)]).astype(np.float64)
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


def _bad_value_error(x: npt.NDArray[Any], dom: _Domain, row0: int) -> ValueError:
    ok = np.isnan(x) | np.isin(x, dom.values)
    i, j = np.argwhere(~ok)[0]
    vals = [f"{v:g}" for v in dom.values.tolist()]
    shown = "{" + ", ".join(vals) + "}" if len(vals) <= 12 else f"{{{vals[0]}, ..., {vals[-1]}}}"
    return ValueError(
        f"values2d[{row0 + int(i)}, {int(j)}] = {float(x[i, j])!r} is not in the value domain {shown} "
        "(NaN marks a missing rating)"
    )


def _encode_chunk(xc: npt.NDArray[Any], dom: _Domain, row0: int) -> npt.NDArray[np.int16]:
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


def _encode(x: npt.NDArray[Any], dom: _Domain) -> npt.NDArray[np.int16]:
    if dom.size > 32000:
        raise ValueError(f"the value domain has {dom.size} values; at most 32000 are supported")
    if x.dtype == np.int16 and dom.start == 0.0 and dom.step == 1.0 and x.flags.c_contiguous:
        # an int16 table on the domain 0..V-1 is its own codes (no missing values): validated, not copied
        for r0, r1 in _row_chunks(x.shape[0], x.shape[1]):
            xc = x[r0:r1]
            if xc.size and (int(xc.min()) < 0 or int(xc.max()) > dom.size - 1):
                raise _bad_value_error(xc, dom, r0)
        return x
    out = np.empty(x.shape, dtype=np.int16)
    for r0, r1 in _row_chunks(x.shape[0], x.shape[1]):
        out[r0:r1] = _encode_chunk(x[r0:r1], dom, r0)
    return out


def _unit_matrix(unit_idx: IntArray, n_units: int, dtype: npt.DTypeLike) -> sp.csc_matrix:
    """Sparse (n_units x n_rows) 0/1 matrix; ``M @ X`` sums the rows of X per unit."""
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up
    n = unit_idx.size
    rows = sp.csr_matrix(
        (np.ones(n, dtype=dtype), unit_idx, np.arange(n + 1, dtype=np.intp)), shape=(n, n_units)
    )
    return rows.T
