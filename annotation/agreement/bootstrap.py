"""Bootstrap over units (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
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


def _moment_rows(st: _UnitStats, j: int) -> FloatArray:
    """Emotion j's four rows of ``_boot_features_t`` (moments kind): the same numbers, one emotion."""
    m, s1, s2 = (a[j] for a in st.moment_ints())
    pair = m >= 2
    out = np.empty((4, m.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        out[0] = np.where(pair, 2 * (m * s2 - s1 * s1) / np.where(pair, m - 1, 1), 0.0)
    out[1] = np.where(pair, m, 0)
    out[2] = np.where(pair, s1, 0)
    out[3] = np.where(pair, s2, 0)
    return out


def _boot_plan(p: _Prepared, st: _UnitStats) -> _BootPlan:
    if st.kind == "moments":
        assert st.packed is not None
        u, n_e = st.packed.shape
        k = 4
        n_full = n_e * k

        def rows_of(j: int) -> FloatArray:
            return _moment_rows(st, j)  # one emotion at a time: no (E*4, U) table (1.3 GB at a million units)
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
    ft = np.empty((n_full + 1, u))
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
                ft[n_keep] = rows[r]
                n_keep += 1
                if u:
                    max_abs = max(max_abs, float(np.abs(rows[r]).max()))
                    integral = integral and bool(np.array_equal(rows[r], np.rint(rows[r])))
    ft = ft[: n_keep + 1]
    ft[-1] = 1.0
    block = int((_F32_EXACT / 2) // max(max_abs, 1.0))
    exact32 = bool(u < _F32_EXACT and block >= 1024 and integral)
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
    idx: npt.NDArray[np.integer], strata: _Strata, excess: I64Array
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
        rank = np.empty(u, dtype=np.intp)
        rank[order] = np.arange(u, dtype=np.intp)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(cell))]).astype(np.intp)
        # float32 when exact, built a row at a time: no float64 copy of every feature (1 GB at a million units)
        ft_cells = _gather_columns(plan.ft, order, np.float32 if plan.exact32 else np.float64)
        # onehot[c, j] = 1 when cell c lies in stratum j of the key
        onehots = [np.eye(len(k.members))[k.labels[order[bounds[:-1]]]] for k in keys]
    else:
        rank = None
        bounds = np.array([0, u], dtype=np.intp)
        ft_cells = plan.ft.astype(np.float32) if plan.exact32 else plan.ft
        onehots = []
    n_cells = bounds.size - 1
    width = plan.block if plan.exact32 else u
    blocks: list[tuple[int, int, int, float]] = []
    for c in range(n_cells):
        lo, hi = int(bounds[c]), int(bounds[c + 1])
        for a in range(lo, hi, width):
            b = min(a + width, hi)
            blocks.append((c, a, b, float(np.abs(ft_cells[:, a:b]).max())))
    f32 = ft_cells if plan.exact32 else None
    ext = [[_extension_rng(seed, j) for j in range(len(k.members))] for k in keys]
    n_out = (1 if want_main else 0) + sum(len(k.members) for k in keys)
    rng = np.random.default_rng(seed)
    step = max(1, min(n_boot, _BOOT_CHUNK_ENTRIES // u))
    w32 = np.empty((step, u), dtype=np.float32)
    ones = plan.n_cols - 1
    pool = None
    if f32 is not None and _THREADS > 1 and u * min(step, n_boot) >= _PARALLEL_ENTRIES:
        pool = ThreadPoolExecutor(max_workers=_THREADS)
    try:
        with _blas_threads(1) if f32 is not None else nullcontext():
            _chunks(p, plan, n_boot, u, e, step, rng, rank, w32, f32, ft_cells, n_cells, blocks, ones, keys, onehots,
                    ext, n_out, main, per_key, pool)
    finally:
        if pool is not None:
            pool.shutdown()
    return main, per_key


def _gather_columns(ft: FloatArray, order: IntArray, dtype: npt.DTypeLike) -> npt.NDArray[np.floating]:
    """``ft[:, order].astype(dtype)`` a row at a time (no full-size temporary)."""
    out = np.empty((ft.shape[0], order.size), dtype=dtype)
    for i in range(ft.shape[0]):
        out[i] = ft[i, order]
    return out


def _cell_sums32(w: npt.NDArray[np.float32], f32: npt.NDArray[np.float32],
                 blocks: list[tuple[int, int, int, float]], ones: int, cs: FloatArray, r0: int, r1: int) -> None:
    """Add resamples r0..r1's float32 cell-block products to ``cs`` (cells, resamples, columns), with
    a float64 redo of any resample whose block sum could exceed float32's exact integers."""
    wr = w[r0:r1]
    for c, lo, hi, top in blocks:
        part = np.matmul(wr[:, lo:hi], f32[:, lo:hi].T).astype(np.float64)
        bad = part[:, ones] * top >= _F32_EXACT
        if bool(bad.any()):
            # the float32 features are exact integers: in float64 they are the features themselves
            part[bad] = wr[bad, lo:hi].astype(np.float64) @ f32[:, lo:hi].T.astype(np.float64)
        cs[c, r0:r1] += part


def _chunks(p: _Prepared, plan: _BootPlan, n_boot: int, u: int, e: int, step: int, rng: np.random.Generator,
            rank: IntArray | None, w32: npt.NDArray[np.float32], f32: npt.NDArray[np.float32] | None,
            ft_cells: npt.NDArray[np.floating], n_cells: int, blocks: list[tuple[int, int, int, float]], ones: int, keys: Sequence[_Strata],
            onehots: list[FloatArray], ext: list[list[np.random.Generator]], n_out: int, main: FloatArray | None,
            per_key: list[list[FloatArray]], pool: ThreadPoolExecutor | None) -> None:
    """The resample chunks of ``_run_bootstrap`` (its state passed in), writing into main and per_key."""
    want_main = main is not None
    starts = list(range(0, n_boot, step))

    def draw(b0: int) -> npt.NDArray[np.intp]:
        # The same stream as resample_indices (integers are drawn in the same order whatever the chunking,
        # and below 2**32 an intp draw is the int32 draw): intp, so that neither the gather nor bincount
        # converts the indices first.
        return rng.integers(0, u, size=(min(step, n_boot - b0), u), dtype=np.intp)

    # With threads, the next chunk's draws are made (numpy releases the GIL while drawing) while this
    # chunk is counted and multiplied; still one after another from the one generator: the same stream.
    drawer = ThreadPoolExecutor(max_workers=1) if pool is not None and len(starts) > 1 else None
    ahead = drawer.submit(draw, starts[0]) if drawer is not None else None
    try:
        for k, b0 in enumerate(starts):
            if ahead is not None and drawer is not None:
                idx = ahead.result()
                ahead = drawer.submit(draw, starts[k + 1]) if k + 1 < len(starts) else None
            else:
                idx = draw(b0)
            _chunk(p, plan, b0, idx, u, e, rank, w32, f32, ft_cells, n_cells, blocks, ones, keys, onehots, ext,
                   n_out, main, per_key, pool, want_main)
    finally:
        if drawer is not None:
            drawer.shutdown()


def _chunk(p: _Prepared, plan: _BootPlan, b0: int, idx: npt.NDArray[np.intp], u: int, e: int, rank: IntArray | None,
           w32: npt.NDArray[np.float32], f32: npt.NDArray[np.float32] | None, ft_cells: npt.NDArray[np.floating],
           n_cells: int, blocks: list[tuple[int, int, int, float]], ones: int, keys: Sequence[_Strata],
           onehots: list[FloatArray], ext: list[list[np.random.Generator]], n_out: int, main: FloatArray | None,
           per_key: list[list[FloatArray]], pool: ThreadPoolExecutor | None, want_main: bool) -> None:
    """One chunk of resamples (rows b0.. of the draws ``idx``): weights, cell sums, alphas."""
    nb = idx.shape[0]
    pidx = idx if rank is None else rank[idx]
    for i in range(nb):
        w32[i] = np.bincount(pidx[i], minlength=u)
    w = w32[:nb]
    cs = np.zeros((n_cells, nb, plan.n_cols))
    if f32 is not None:
        # exact integer products: the resamples split between threads, each with a one-thread BLAS
        # (many small products: BLAS's own threads mostly wait on each other, worst on a busy machine)
        halves = [(0, nb)] if pool is None or nb < 2 else [(0, nb // 2), (nb // 2, nb)]
        jobs = [(w, f32, blocks, ones, cs, r0, r1) for r0, r1 in halves]
        if pool is None:
            _cell_sums32(*jobs[0])
        else:
            list(pool.map(lambda job: _cell_sums32(*job), jobs))
    else:
        w64 = w.astype(np.float64)
        for c, lo, hi, _ in blocks:
            cs[c] += w64[:, lo:hi] @ ft_cells[:, lo:hi].T
    outs: list[FloatArray] = []
    if want_main:
        outs.append(cs.sum(axis=0)[:, None, :])
    for ki, key in enumerate(keys):
        if f32 is not None:
            # integer-valued cell sums: any order of adding them is exact, so one matrix product
            s_key = np.tensordot(onehots[ki], cs, axes=([0], [0])).transpose(1, 0, 2)
        else:
            s_key = np.einsum("cbf,cj->bjf", cs, onehots[ki])
        outs.append(_stratum_sums(plan, key, ext[ki], idx, s_key))
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


def _stratum_sums(
    plan: _BootPlan,
    key: _Strata,
    ext: list[np.random.Generator],
    idx: npt.NDArray[np.integer],
    s_str: FloatArray,
) -> FloatArray:
    """Turn the main resamples' per-stratum sums (nb, K, cols) into within-stratum resample sums:
    take away each stratum's draws beyond n_j (its last ones in the row) and add extension draws
    where the row has fewer than n_j (see ``_run_bootstrap``)."""
    import scipy.sparse as sp  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up
    nb, n_str, n_cols = s_str.shape
    sizes = key.sizes
    diff = np.rint(s_str[:, :, -1]).astype(np.int64) - sizes
    rows, strs, units = _drop_draws(idx, key, diff)
    # float32 when exact: integer features and fewer than plan.block entries per (row, stratum), so
    # every partial sum stays below 2**23 (see _boot_plan)
    small = plan.exact32 and int(np.abs(diff).max(initial=0)) < plan.block
    data = [np.full(rows.size, -1.0, dtype=np.float32 if small else np.float64)]
    r_all, s_all, u_all = [rows], [strs], [units]
    short = np.maximum(-diff, 0)
    for j in range(n_str):
        tot = int(short[:, j].sum())
        if tot:
            draw = ext[j].integers(0, int(sizes[j]), size=tot, dtype=np.int64)
            r_all.append(np.repeat(np.arange(nb, dtype=np.intp), short[:, j]))
            s_all.append(np.full(tot, j, dtype=np.intp))
            u_all.append(key.members[j][draw])
            data.append(np.ones(tot, dtype=data[0].dtype))
    units_all = np.concatenate(u_all)
    if units_all.size:
        group = np.concatenate(r_all) * n_str + np.concatenate(s_all)
        pick = sp.csr_matrix(
            (np.concatenate(data), (group, np.arange(units_all.size))), shape=(nb * n_str, units_all.size)
        )
        feats = plan.rows()[units_all]
        corr = np.asarray(pick @ (feats if small else feats.astype(np.float64, copy=False)))
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
