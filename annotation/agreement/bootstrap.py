"""Bootstrap over units (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .constants import _BOOT_CHUNK_ENTRIES, FloatArray, I64Array, IntArray, Level
from .prepare import _factorize
from .results import AlphaResult
from .units import (
    _alpha_from_stats,
    _fixed_distance,
    _moment_terms,
    _ordinal_positions,
    _prepare,
    _Prepared,
    _unit_stats,
    _UnitStats,
)

# Threads for the float32 cell products of large bootstraps (at most 2: the products are short).
_THREADS = min(2, os.cpu_count() or 1)
_PARALLEL_ENTRIES = 1 << 21  # resample weights per chunk from which the threads pay


def _blas_threads(n: int) -> Any:
    """Run the block with ``n`` BLAS threads (threadpoolctl: numpy's OpenBLAS, restored after)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


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


@dataclass
class _BootPlan:
    """Bootstrap features of a prepared table, transposed and de-duplicated, plus a ones row.

    ``ft`` has shape (n_cols, U): ``ft[col_map].T`` is ``_boot_features`` and the trailing row of
    ones makes the resample-weighted sums also count the draws. ``exact32`` when every feature
    is an integer small enough that float32 block products are exact (checked per block and
    resample at run time, with a float64 redo where the bound does not hold). When exact, ``ft``
    is held in the smallest dtype that holds its integers (uint8 for the usual 0..7 scale with a
    few ratings per image: 122 MB instead of 976 MB of float64 at a million images, #21) and
    converted to float32 a block of units at a time; otherwise it is float64.
    ``_run_bootstrap`` may reorder the columns (units) in place: ``unit_order[i]`` is then the unit
    of column i, and ``column_of`` its inverse (both None while the columns are in unit order).
    """

    ft: npt.NDArray[np.number]
    col_map: IntArray
    k: int
    moments: bool
    exact32: bool
    block: int

    unit_order: IntArray | None = None
    column_of: IntArray | None = None

    @property
    def n_cols(self) -> int:
        return int(self.ft.shape[0])

    def reorder(self, order: IntArray) -> None:
        """Put the columns in the unit order ``order`` (column i holds unit order[i]), in place."""
        pos = order if self.column_of is None else self.column_of[order]
        self.ft = _gather_columns(self.ft, pos, self.ft.dtype)
        self.unit_order = order
        rank = np.empty(order.size, dtype=np.intp)
        rank[order] = np.arange(order.size, dtype=np.intp)
        self.column_of = rank


# The compact dtypes of an exact feature table, narrowest first (float32 holds integers below 2**24).
_COMPACT = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32), np.dtype(np.float64))


def _row_dtype(row: FloatArray, integral: bool) -> np.dtype:
    """The narrowest of ``_COMPACT`` that holds ``row`` exactly."""
    if not integral or row.size == 0:
        return _COMPACT[-1] if not integral else _COMPACT[0]
    lo, hi = float(row.min()), float(row.max())
    if lo < 0 or hi >= _F32_EXACT:
        return _COMPACT[-1]
    if hi < 256:
        return _COMPACT[0]
    return _COMPACT[1] if hi < 65536 else _COMPACT[2]


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


def _moment_features(m: I64Array, s1: I64Array, s2: I64Array) -> FloatArray:
    """The four ``_boot_features_t`` rows of per-unit moments (m, s1, s2): shape (4, len(m))."""
    pair = m >= 2
    out = np.empty((4, m.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        out[0] = np.where(pair, 2 * (m * s2 - s1 * s1) / np.where(pair, m - 1, 1), 0.0)
    out[1] = np.where(pair, m, 0)
    out[2] = np.where(pair, s1, 0)
    out[3] = np.where(pair, s2, 0)
    return out


def _moment_table(st: _UnitStats, n_units: int) -> FloatArray | None:
    """``_moment_features`` of every packed code below the largest in use, shape (4, top): a unit's
    rows are then ``table[:, code]`` (the same numbers: the same operations on the same integers),
    a gather instead of unpacking and dividing per unit. None where the codes are too many for it."""
    assert st.packed is not None
    top = int(st.packed.max(initial=0)) + 1
    if top > 4 * n_units + 4096:
        return None
    c = np.arange(top, dtype=np.int64)
    return _moment_features(c & ((1 << st.b1) - 1), (c >> st.b1) & ((1 << (st.b2 - st.b1)) - 1), c >> st.b2)


def _moment_rows(st: _UnitStats, j: int, by_emotion: npt.NDArray[np.integer] | None = None,
                 table: FloatArray | None = None) -> FloatArray:
    """Emotion j's four rows of ``_boot_features_t`` (moments kind): the same numbers, one emotion
    (``by_emotion``: ``st.packed_by_emotion()`` when the caller has it; ``table``: ``_moment_table``)."""
    if table is not None:
        assert st.packed is not None
        codes = by_emotion[j] if by_emotion is not None else st.packed[:, j]
        return np.take(table, codes, axis=1)
    if by_emotion is None:
        m, s1, s2 = st.moments_of(j)
    else:
        c = by_emotion[j].astype(np.int64)
        m, s1, s2 = c & ((1 << st.b1) - 1), (c >> st.b1) & ((1 << (st.b2 - st.b1)) - 1), c >> st.b2
    return _moment_features(m, s1, s2)


def _boot_plan(p: _Prepared, st: _UnitStats) -> _BootPlan:
    if st.kind == "moments":
        assert st.packed is not None
        u, n_e = st.packed.shape
        k = 4
        n_full = n_e * k
        by_emotion = st.packed_by_emotion()
        table = _moment_table(st, u)

        def rows_of(j: int) -> FloatArray:
            return _moment_rows(st, j, by_emotion, table)  # one emotion at a time: no (E*4, U) table (1.3 GB at a million units)
    else:
        full, k = _boot_features_t(p, st)
        n_full, u = full.shape
        n_e = n_full // k if k else 0

        def rows_of(j: int) -> FloatArray:
            return full[j * k : (j + 1) * k]
    # Identical columns (e.g. the rating count of every emotion when nothing is missing) are
    # multiplied once: group by a random projection, confirm with an exact comparison. The kept
    # rows go straight into ft, allocated for all of them: rows never written are never touched.
    probe = np.random.default_rng(20240917).standard_normal(u)
    # the narrowest dtype that holds every kept row exactly, widened (a copy of the kept rows) when a
    # row needs it; float64 (as the features are) as soon as a row is not integral
    ft: npt.NDArray[np.number] = np.empty((n_full + 1, u), dtype=_COMPACT[0])
    n_keep = 0
    col_map = np.empty(n_full, dtype=np.intp)
    groups: dict[float, list[int]] = {}
    # the largest |feature| (the ones row's 1 included) and whether all are integers, row by row
    # (no full-size temporaries): what np.abs(ft).max() and ft == rint(ft) say
    max_abs, integral = 1.0, True
    for b in range(n_e):
        rows = rows_of(b)
        fp = rows @ probe if u else np.zeros(rows.shape[0])
        for r in range(rows.shape[0]):
            j = b * k + r
            cand = groups.setdefault(float(fp[r]), [])
            for c in cand:
                if np.array_equal(ft[c], rows[r]):
                    col_map[j] = c
                    break
            else:
                cand.append(n_keep)
                col_map[j] = n_keep
                row_integral = True
                if u:
                    max_abs = max(max_abs, float(np.abs(rows[r]).max()))
                    row_integral = bool(np.array_equal(rows[r], np.rint(rows[r])))
                    integral = integral and row_integral
                need = _row_dtype(rows[r], row_integral)
                if _COMPACT.index(need) > _COMPACT.index(ft.dtype):
                    wider = np.empty(ft.shape, dtype=need)  # rows never written are never touched
                    wider[:n_keep] = ft[:n_keep]
                    ft = wider
                ft[n_keep] = rows[r]
                n_keep += 1
    ft = ft[: n_keep + 1]
    ft[-1] = 1
    block = int((_F32_EXACT / 2) // max(max_abs, 1.0))
    exact32 = bool(u < _F32_EXACT and block >= 1024 and integral)
    if not exact32 and ft.dtype != np.float64:
        ft = ft.astype(np.float64)  # the float64 products, as before
    return _BootPlan(ft, col_map, k, st.kind == "moments", exact32, block)


@dataclass(frozen=True)
class _Strata:
    """A partition of the units (in unit order) into strata 0..K-1."""

    labels: IntArray  # stratum of each unit
    n_strata: int


def _make_strata(labels: IntArray, n_strata: int) -> _Strata:
    return _Strata(labels, n_strata)


def _run_bootstrap(
    p: _Prepared,
    plan: _BootPlan,
    n_boot: int,
    seed: int,
    keys: Sequence[_Strata] = (),
    *,
    want_main: bool = True,
) -> tuple[FloatArray | None, list[list[FloatArray]]]:
    """Alpha replicates of the main bootstrap and of each stratum's, from one set of draws.

    Main resample b is row b of ``resample_indices(n_units, n_boot, seed)``. For each partition in
    ``keys``, stratum j's replicate b is the stratum's alpha under main resample b's weights restricted
    to the stratum's units (an unconditional bootstrap of the subgroup: the number of its units drawn
    varies around n_j from resample to resample; docs/agreement.md, "Demographic strata").

    The resample weights are built once per chunk of resamples, with units ordered by their cell
    (the combination of their strata over all keys), and multiplied with the features one cell
    block at a time; every main and stratum sum is then a sum of cell sums. Returns (main (n_boot, E)
    or None, per key a list over strata of (n_boot, E)); NaN marks an undefined replicate (e.g. a
    stratum with fewer than two pairable units drawn).

    ``plan`` may come back with its columns reordered (``_BootPlan.reorder``): pass a fresh one or
    the same one again, never rely on ``plan.ft``'s column order afterwards.
    """
    u = p.n_units
    e = p.n_emotions
    main = np.full((n_boot, e), np.nan) if want_main else None
    per_key = [[np.full((n_boot, e), np.nan) for _ in range(k.n_strata)] for k in keys]
    if u == 0:
        return main, per_key
    # Cells: units grouped by their combination of strata.
    if keys:
        combo = np.zeros(u, dtype=np.int64)
        for k in keys:
            combo = combo * k.n_strata + k.labels
        cell, _ = _factorize(combo)
        order = np.argsort(cell, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(cell))]).astype(np.intp)
        # the features in cell order, in place of the unit-order table (no second full-size copy)
        plan.reorder(order)
        rank = plan.column_of
        # onehot[c, j] = 1 when cell c lies in stratum j of the key
        onehots = [np.eye(k.n_strata)[k.labels[order[bounds[:-1]]]] for k in keys]
    else:
        if plan.column_of is not None:
            plan.reorder(np.arange(u, dtype=np.intp))
        rank = None
        bounds = np.array([0, u], dtype=np.intp)
        onehots = []
    n_cells = bounds.size - 1
    n_out = (1 if want_main else 0) + sum(k.n_strata for k in keys)
    rng = np.random.default_rng(seed)
    step = max(1, min(n_boot, _BOOT_CHUNK_ENTRIES // u))
    ones = plan.n_cols - 1
    if plan.exact32:
        _chunks_exact(p, plan, n_boot, u, e, step, rng, rank, bounds, ones, onehots, n_out, main, per_key)
        return main, per_key
    ft_cells = plan.ft
    blocks = [(c, int(bounds[c]), int(bounds[c + 1]), 0.0) for c in range(n_cells)]
    w32 = np.empty((step, u), dtype=np.float32)
    _chunks(p, plan, n_boot, u, e, step, rng, rank, w32, None, ft_cells, n_cells, blocks, ones, onehots,
            n_out, main, per_key, None)
    return main, per_key


def _gather_columns(ft: npt.NDArray[np.number], order: IntArray,
                    dtype: npt.DTypeLike) -> npt.NDArray[np.number]:
    """``ft[:, order].astype(dtype)`` a row at a time (no full-size temporary)."""
    out = np.empty((ft.shape[0], order.size), dtype=dtype)
    for i in range(ft.shape[0]):
        out[i] = ft[i, order]
    return out


# Resample weights held at once by the exact route, as uint8 counts (bytes): 64 MiB, e.g. 64
# resamples of a million units or 640 of 100,000. Many resamples per pass over the features keep the
# products compute-bound (with 8 resamples a pass streamed the whole float32 table from memory for
# little arithmetic: 5 GFLOP/s at a million units), and uint8 weights keep that at a quarter of
# float32's memory.
_WEIGHT_BYTES = 1 << 26
# Units per block of the exact route's products (fewer where the float32 bound asks for fewer):
# a block of weights and features stays in cache while it is multiplied.
_BLOCK_UNITS = 4096


def _exact_blocks(ft: npt.NDArray[np.number], bounds: IntArray, width: int) -> list[tuple[int, int, int, float]]:
    """(cell, lo, hi, largest |feature|) of the unit blocks of each cell, at most ``width`` wide."""
    blocks: list[tuple[int, int, int, float]] = []
    for c in range(bounds.size - 1):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        for a in range(lo, hi, width):
            b = min(a + width, hi)
            blocks.append((c, a, b, float(np.abs(ft[:, a:b]).max())))
    return blocks


def _block_sums(w: npt.NDArray[np.integer], ft: npt.NDArray[np.number], blocks: list[tuple[int, int, int, float]],
                ones: int, cs: FloatArray) -> None:
    """Add the weights' float32 block products with the features to ``cs`` (cells, resamples,
    columns), with a float64 redo of any resample whose block sum could exceed float32's exact
    integers. Weights and features are integers, so every sum is exact and any split of the blocks
    (over threads) gives the same integers."""
    for c, lo, hi, top in blocks:
        wf = w[:, lo:hi].astype(np.float32)
        ff = ft[:, lo:hi] if ft.dtype == np.float32 else ft[:, lo:hi].astype(np.float32)
        part = np.matmul(wf, ff.T).astype(np.float64)
        bad = part[:, ones] * top >= _F32_EXACT
        if bool(bad.any()):
            part[bad] = wf[bad].astype(np.float64) @ ff.T.astype(np.float64)
        cs[c] += part


def _chunks_exact(p: _Prepared, plan: _BootPlan, n_boot: int, u: int, e: int, step: int, rng: np.random.Generator,
                  rank: IntArray | None, bounds: IntArray, ones: int,
                  onehots: list[FloatArray], n_out: int,
                  main: FloatArray | None, per_key: list[list[FloatArray]]) -> None:
    """``_run_bootstrap``'s resamples with integer features (``plan.exact32``).

    The draws come in chunks of ``step`` resamples (the same stream as ``resample_indices``) from a
    drawer thread; their counts are kept as uint8 weights for many chunks at once (a group,
    ``_WEIGHT_BYTES``), and a group's products with the features run on worker threads while this
    thread counts the next group's draws (two weight buffers): counting holds the GIL, drawing and
    the products do not, so the two cores stay busy. Every sum is an exact
    integer, so the alphas are those of ``_chunk`` (float32 cell products of one chunk), bit for bit.
    """
    n_cells = bounds.size - 1
    ft = plan.ft
    if ft.dtype != np.float32 and ft.size * 4 <= _WEIGHT_BYTES:
        ft = ft.astype(np.float32)  # small: convert once instead of block by block
    blocks = _exact_blocks(ft, bounds, max(1, min(plan.block, _BLOCK_UNITS)))
    group = max(step, min(n_boot, (_WEIGHT_BYTES // u) // step * step))
    starts = list(range(0, n_boot, step))
    groups = list(range(0, n_boot, group))
    buffers: list[npt.NDArray[np.integer]] = [np.empty((min(group, n_boot), u), dtype=np.uint8)
                                              for _ in range(min(2, len(groups)))]
    draw_dtype = np.int32 if u < (1 << 31) else np.intp  # below 2**31 the int32 draws are the intp draws

    def draw(b0: int) -> npt.NDArray[np.integer]:
        # The same stream as resample_indices (see _chunks); int32: half the memory, faster to count.
        return rng.integers(0, u, size=(min(step, n_boot - b0), u), dtype=draw_dtype)

    n_threads = _THREADS if _THREADS > 1 and u * min(group, n_boot) >= _PARALLEL_ENTRIES else 1
    # the blocks per thread: whole cells each when there are enough (one shared table of cell sums),
    # else every n-th block with a table of its own
    by_cell = n_cells >= 2 * n_threads
    if by_cell:
        sizes = np.diff(bounds)
        cut = np.searchsorted(np.cumsum(sizes), np.arange(1, n_threads) * u / n_threads)
        owner = np.zeros(n_cells, dtype=np.intp)
        for c0 in cut:
            owner[int(c0) + 1 :] += 1
        shares = [[b for b in blocks if owner[b[0]] == t] for t in range(n_threads)]
    else:
        shares = [blocks[t::n_threads] for t in range(n_threads)]
    # with the columns in cell order: the counts of a chunk in unit order, and the unit of each column
    order: IntArray = plan.unit_order if plan.unit_order is not None and rank is not None else np.arange(0)
    counting: npt.NDArray[Any] = np.empty((step, u), dtype=np.uint8) if rank is not None else buffers[0][:0]
    pool = ThreadPoolExecutor(max_workers=n_threads)
    drawer = ThreadPoolExecutor(max_workers=1)
    ahead: Any = drawer.submit(draw, starts[0])
    k = 0
    pending: tuple[int, int, list[Any], list[FloatArray]] | None = None

    def finish(g0: int, nb: int, jobs: list[Any], parts: list[FloatArray]) -> None:
        for job in jobs:
            job.result()
        cs = parts[0]
        for extra in parts[1:]:
            cs += extra  # integers: exact
        outs: list[FloatArray] = []
        if main is not None:
            outs.append(cs.sum(axis=0)[:, None, :])
        for onehot in onehots:
            # integer-valued cell sums: any order of adding them is exact, so one matrix product
            outs.append(np.tensordot(onehot, cs, axes=([0], [0])).transpose(1, 0, 2))
        _store_alphas(p, plan, g0, nb, outs, n_out, e, main, per_key)

    try:
        with _blas_threads(1):
            for gi, g0 in enumerate(groups):
                g1 = min(g0 + group, n_boot)
                nb = g1 - g0
                weights = buffers[gi % len(buffers)]
                while k < len(starts) and starts[k] < g1:
                    b0 = starts[k]
                    idx = ahead.result()
                    k += 1
                    ahead = drawer.submit(draw, starts[k]) if k < len(starts) else None
                    nc = idx.shape[0]
                    # counted in unit order (the draws as they come), then put in column order by one
                    # gather of the small counts: cheaper than mapping every draw to its column (#21)
                    cnt: npt.NDArray[Any] = weights[b0 - g0 : b0 - g0 + nc] if rank is None else counting[:nc]
                    for i in range(nc):
                        row = cnt[i]
                        row[...] = 0
                        # counted in place in the small dtype (a bincount's int64 counts miss the cache
                        # at a million units: 4 ns a draw instead of 19)
                        np.add.at(row, idx[i], row.dtype.type(1))
                        if int(row.sum(dtype=np.int64)) != u:
                            # a count wrapped (a unit drawn 256 times or more: never in practice but
                            # with a handful of units): wider counts for this buffer
                            wider = np.uint16 if weights.dtype == np.uint8 else np.float32
                            weights = buffers[gi % len(buffers)] = weights.astype(wider)
                            if rank is None:
                                cnt = weights[b0 - g0 : b0 - g0 + nc]
                            else:
                                cnt = counting = counting.astype(wider)
                                cnt = cnt[:nc]
                            cnt[i] = np.bincount(idx[i], minlength=u)
                    if rank is not None:
                        if counting.dtype != weights.dtype:  # widened for an earlier buffer or this one
                            weights = buffers[gi % len(buffers)] = weights.astype(counting.dtype)
                        np.take(cnt, order, axis=1, out=weights[b0 - g0 : b0 - g0 + nc], mode="clip")
                    del idx, cnt
                if pending is not None:
                    finish(*pending)  # the previous group's products ran while this one was counted
                    pending = None
                w = weights[:nb]
                parts = [np.zeros((n_cells, nb, plan.n_cols)) for _ in range(1 if by_cell else n_threads)]
                jobs = [pool.submit(_block_sums, w, ft, shares[t], ones, parts[0 if by_cell else t])
                        for t in range(n_threads)]
                pending = (g0, nb, jobs, parts)
            if pending is not None:
                finish(*pending)
    finally:
        drawer.shutdown(cancel_futures=True)
        pool.shutdown(cancel_futures=True)


def _store_alphas(p: _Prepared, plan: _BootPlan, b0: int, nb: int, outs: list[FloatArray], n_out: int, e: int,
                  main: FloatArray | None, per_key: list[list[FloatArray]]) -> None:
    """Alphas of resamples b0..b0+nb from their summed features ``outs`` (main, then each key's
    strata), written into main and per_key."""
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


def _chunks(p: _Prepared, plan: _BootPlan, n_boot: int, u: int, e: int, step: int, rng: np.random.Generator,
            rank: IntArray | None, w32: npt.NDArray[np.float32], f32: npt.NDArray[np.float32] | None,
            ft_cells: npt.NDArray[Any], n_cells: int, blocks: list[tuple[int, int, int, float]], ones: int,
            onehots: list[FloatArray], n_out: int, main: FloatArray | None,
            per_key: list[list[FloatArray]], pool: ThreadPoolExecutor | None) -> None:
    """The resample chunks of ``_run_bootstrap`` with float64 features (its state passed in),
    writing into main and per_key."""
    want_main = main is not None
    starts = list(range(0, n_boot, step))

    def draw(b0: int) -> npt.NDArray[np.intp]:
        # The same stream as resample_indices (integers are drawn in the same order whatever the chunking,
        # and below 2**32 an intp draw is the int32 draw): intp, so that neither the gather nor bincount
        # converts the indices first.
        return rng.integers(0, u, size=(min(step, n_boot - b0), u), dtype=np.intp)

    for b0 in starts:
        _chunk(p, plan, b0, draw(b0), u, e, rank, w32, f32, ft_cells, n_cells, blocks, ones, onehots,
               n_out, main, per_key, pool, want_main)


def _chunk(p: _Prepared, plan: _BootPlan, b0: int, idx: npt.NDArray[np.intp], u: int, e: int, rank: IntArray | None,
           w32: npt.NDArray[np.float32], f32: npt.NDArray[np.float32] | None, ft_cells: npt.NDArray[Any],
           n_cells: int, blocks: list[tuple[int, int, int, float]], ones: int,
           onehots: list[FloatArray], n_out: int, main: FloatArray | None,
           per_key: list[list[FloatArray]], pool: ThreadPoolExecutor | None, want_main: bool) -> None:
    """One chunk of resamples (rows b0.. of the draws ``idx``) with float64 features: weights, cell
    sums, alphas."""
    nb = idx.shape[0]
    pidx = idx if rank is None else rank[idx]
    for i in range(nb):
        w32[i] = np.bincount(pidx[i], minlength=u)
    w = w32[:nb]
    cs = np.zeros((n_cells, nb, plan.n_cols))
    w64 = w.astype(np.float64)
    for c, lo, hi, _ in blocks:
        cs[c] += w64[:, lo:hi] @ ft_cells[:, lo:hi].T
    outs: list[FloatArray] = []
    if want_main:
        outs.append(cs.sum(axis=0)[:, None, :])
    for onehot in onehots:
        outs.append(np.einsum("cbf,cj->bjf", cs, onehot))
    _store_alphas(p, plan, b0, nb, outs, n_out, e, main, per_key)


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
