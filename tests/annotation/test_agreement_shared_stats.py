"""The snapshot's shortcuts give the very numbers of the long way, bit for bit (#21): zero inflation
and the ratings per image from the engine's per-unit moments, AC2 from those moments, the
rater-quality figures from one diff_from_others, and the bootstrap's float32 and matrix-product
paths against the reference loop."""

import numpy as np
import pytest

from annotation import agreement as ag
from annotation import rater_quality as rq
from annotation.agreement.units import _prepare, _unit_stats
from annotation.agreement.zero_inflation import gwet_ac2, ratings_per_unit, zero_inflation


def _table(seed: int, *, n_units: int, domain: tuple[float, ...], missing: float, max_raters: int):
    rng = np.random.default_rng(seed)
    per = rng.integers(1, max_raters + 1, size=n_units)
    units = np.repeat(np.arange(n_units) * 3 + 7, per)  # gaps in the ids
    raters = np.concatenate([rng.choice(12, size=k, replace=False) for k in per])
    dom = np.asarray(domain, dtype=np.float64)
    zero = rng.random((units.size, 6)) < 0.6
    values = np.where(zero, dom[0], dom[rng.integers(0, dom.size, size=(units.size, 6))])
    values[rng.random(values.shape) < missing] = np.nan
    values[:, 5] = dom[0]  # an emotion nobody sees: undefined presence and intensity
    return units, raters, values


CASES = [
    dict(domain=tuple(range(8)), missing=0.0, max_raters=3),
    dict(domain=tuple(range(8)), missing=0.15, max_raters=5),
    dict(domain=(0.0, 0.5, 1.0, 1.5), missing=0.1, max_raters=4),
    dict(domain=(0, 1), missing=0.05, max_raters=4),
    dict(domain=(0, 1, 2), missing=0.0, max_raters=2),
]


@pytest.mark.parametrize("case", CASES)
def test_zero_inflation_and_label_k_from_moments_equal_the_separate_tables(case):
    units, raters, values = _table(3, n_units=400, **case)
    p = _prepare(units, values, level="interval", domain=case["domain"], raters=raters)
    st = _unit_stats(p)
    assert st.kind == "moments"
    assert repr(zero_inflation(p, st)) == repr(zero_inflation(p))
    assert ratings_per_unit(p, st) == ratings_per_unit(p)
    codes = p.get_codes()
    assert gwet_ac2(p.unit_idx, p.n_units, codes, p.dom.size, moments=st.moment_ints()) == \
        gwet_ac2(p.unit_idx, p.n_units, codes, p.dom.size)


def test_zero_inflation_off_the_moment_route_is_the_long_way():
    units, raters, values = _table(4, n_units=200, domain=(0, 1, 3, 7), missing=0.1, max_raters=4)
    p = _prepare(units, values, level="interval", domain=(0, 1, 3, 7), raters=raters)
    st = _unit_stats(p)  # uneven domain: counts, not moments
    assert st.kind == "counts"
    assert repr(zero_inflation(p, st)) == repr(zero_inflation(p))


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_rater_quality_with_a_shared_diff_is_the_same(missing):
    units, raters, values = _table(5, n_units=300, domain=tuple(range(8)), missing=missing, max_raters=4)
    diff = rq.diff_from_others(units, values)
    assert repr(rq.severity(units, raters, values, diff=diff)) == repr(rq.severity(units, raters, values))
    a = rq.relative_deviation(units, values, diff=diff)
    assert np.array_equal(a, rq.relative_deviation(units, values), equal_nan=True) and np.isfinite(a).any()
    with pytest.raises(ValueError, match="diff must have the shape of values"):
        rq.severity(units, raters, values, diff=diff[:, :2])


def test_diff_from_others_without_missing_values_is_the_plain_definition():
    units, _, values = _table(6, n_units=150, domain=tuple(range(8)), missing=0.0, max_raters=4)
    got = rq.diff_from_others(units, values)
    for i in range(len(units)):
        others = values[(units == units[i]) & (np.arange(len(units)) != i)]
        if len(others):
            assert np.allclose(got[i], values[i] - others.mean(axis=0), rtol=0, atol=1e-12)
        else:
            assert np.isnan(got[i]).all()


def test_bootstrap_with_strata_matches_the_reference_resamples():
    """Main resamples through the float32 cell products equal alpha on the replayed resamples."""
    units, raters, values = _table(7, n_units=120, domain=tuple(range(8)), missing=0.0, max_raters=3)
    strata = np.where(units % 2 == 0, "even", "odd")
    stats = ag.snapshot_stats(units, raters, values, {"parity": strata}, domain=tuple(range(8)), n_boot=40, seed=9)
    idx = ag.resample_indices(np.unique(units).size, 40, 9)
    uniq = np.unique(units)
    reps = np.array([[a.alpha if a.alpha is not None else np.nan for a in ag.alpha_all(
        np.concatenate([np.full((units == uniq[j]).sum(), k) for k, j in enumerate(row)]),
        np.concatenate([raters[units == uniq[j]] for j in row]),
        np.concatenate([values[units == uniq[j]] for j in row]), domain=tuple(range(8)))] for row in idx])
    defined = ~np.isnan(reps).all(axis=0)
    low = np.full(reps.shape[1], np.nan)
    low[defined] = np.nanquantile(reps[:, defined], 0.025, axis=0)
    got = np.array([np.nan if e.ci_low is None else e.ci_low for e in stats.report])
    assert (~np.isnan(got)).sum() >= 4
    assert np.allclose(got[~np.isnan(got)], low[~np.isnan(got)], rtol=0, atol=1e-9)


def test_stored_quantiles_are_scipys_floats():
    from scipy.special import ndtri, stdtrit

    from annotation.agreement import quantiles as q

    assert q.Z_95 == float(ndtri(q.P_95)) and q.normal_quantile(q.P_95) == float(ndtri(0.975))
    assert q.T_95 == tuple(float(stdtrit(df, q.P_95)) for df in range(1, len(q.T_95) + 1))
    assert q.t_quantile(len(q.T_95) + 5, q.P_95) == float(stdtrit(len(q.T_95) + 5, 0.975))  # beyond: scipy's
    assert q.t_quantile(7, 0.95) == float(stdtrit(7, 0.95)) and q.normal_quantile(0.9) == float(ndtri(0.9))


def test_the_snapshot_computation_imports_no_scipy_special():
    """A small project's report (the command's path) does without scipy.special (~0.3 s to import)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from annotation import agreement as ag, rater_quality as rq; "
            "u = np.repeat(np.arange(60), 3); r = np.tile(np.arange(3), 60); "
            "v = np.random.default_rng(0).integers(0, 8, size=(180, 4)); "
            "ag.snapshot_stats(u, r, v, {'k': u % 2}, domain=tuple(range(8)), n_boot=50); "
            "rq.consistency(u, r, v.astype(float)); "
            "print('scipy.special' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_two_way_intervals_batched_percentiles_equal_the_column_by_column_ones():
    from annotation.agreement import twoway

    rng = np.random.default_rng(12)
    reps = np.round(rng.normal(0.4, 0.1, size=(997, 30)), 3)  # ties included
    reps[rng.random(reps.shape) < 0.002] = np.nan  # a few columns with undefined resamples
    point = [0.4] * 29 + [None]
    loo = rng.normal(0.4, 0.02, size=(6, 30))
    image, both = twoway.two_way_intervals(point, reps, loo, 0.95)
    for j in range(29):
        col = reps[:, j][~np.isnan(reps[:, j])]
        lo, mid, hi = twoway._quantiles(col, 0.95)  # the column on its own
        assert (image[j].low, image[j].high) == (lo, hi)
        assert image[j].n_undefined == int(np.isnan(reps[:, j]).sum())
        w_lo, w_hi = max(mid - lo, 0.0), max(hi - mid, 0.0)
        extra = (float(ndtri_95()) * twoway.jackknife_se(loo[:, j])[0]) ** 2
        assert both[j].low == float(lo - (np.sqrt(w_lo**2 + extra) - w_lo))
        assert both[j].high == min(1.0, float(hi + (np.sqrt(w_hi**2 + extra) - w_hi)))
    assert any(image[j].n_undefined for j in range(29)) and image[29].low is None


def ndtri_95() -> float:
    from scipy.special import ndtri

    return float(ndtri(0.975))


def test_intensity_shift_reads_integer_ratings_as_they_are():
    units, raters, values = _table(8, n_units=300, domain=tuple(range(8)), missing=0.0, max_raters=4)
    as_int = values.astype(np.int16)
    got = rq.intensity_shift(units, raters, as_int)
    assert repr(got) == repr(rq.intensity_shift(units, raters, values))
    assert sum(s.shift is not None for s in got) >= 5


def _int_table(seed: int, n_units: int, *, shuffle: bool):
    """Every unit rated by 2-4 of 12 raters on 6 emotions of 0..7, as int16 (a database read)."""
    rng = np.random.default_rng(seed)
    per = rng.integers(2, 5, size=n_units)
    units = np.repeat(np.arange(n_units) * 2 + 5, per)
    raters = np.concatenate([rng.choice(12, size=k, replace=False) for k in per])
    values = np.where(rng.random((units.size, 6)) < 0.7, 0, rng.integers(0, 8, size=(units.size, 6))).astype(np.int16)
    if shuffle:  # rows not unit by unit: the per-unit sums take the sparse route
        order = rng.permutation(units.size)
        units, raters, values = units[order], raters[order], values[order]
    return units, raters, values


@pytest.mark.parametrize("shuffle", [False, True])
def test_an_int16_table_gives_the_float_tables_numbers(shuffle):
    """#21: integer tables are read as they are (no float64 copy, the int16 table its own codes);
    every figure is the float table's, bit for bit."""
    units, raters, values = _int_table(3, 400, shuffle=shuffle)
    labels = {"g": np.array(["a", "b", "c"])[units % 3]}
    for table in (values, values.astype(np.int8)):
        got = ag.snapshot_stats(units, raters, table, labels, domain=ag.scale_domain(7), n_boot=60, seed=4)
        want = ag.snapshot_stats(units, raters, table.astype(np.float64), labels, domain=ag.scale_domain(7),
                                 n_boot=60, seed=4)
        assert repr(got) == repr(want)
        got_r = ag.agreement_report_with_mean(units, raters, table, domain=ag.scale_domain(7), n_boot=40, seed=1)
        want_r = ag.agreement_report_with_mean(units, raters, table.astype(np.float64), domain=ag.scale_domain(7),
                                               n_boot=40, seed=1)
        assert repr(got_r) == repr(want_r)
    bad = values.copy()
    bad[7, 2] = 9
    with pytest.raises(ValueError, match=r"values2d\[7, 2\] = 9"):
        ag.alpha_all(units, None, bad, domain=ag.scale_domain(7))


def test_coded_labels_are_the_label_arrays():
    """ag.CodedLabels (codes into names, unused and repeated names included) gives the results of
    the label array names[codes]."""
    units, raters, values = _int_table(5, 300, shuffle=False)
    names = np.array(["unknown", "b", "a", "unknown", "never"])
    codes = np.array([0, 1, 2, 3])[(units // 2) % 4]  # 0 and 3 are both "unknown"; "never" is not used
    coded = ag.snapshot_stats(units, raters, values, {"k": ag.CodedLabels(codes, names)},
                              domain=ag.scale_domain(7), n_boot=50, seed=2)
    plain = ag.snapshot_stats(units, raters, values, {"k": names[codes]}, domain=ag.scale_domain(7), n_boot=50, seed=2)
    assert repr(coded) == repr(plain)
    assert sorted({s.stratum for s in coded.strata["k"]}) == ["a", "b", "unknown"]
    with pytest.raises(ValueError, match="k has 3 entries"):
        ag.snapshot_stats(units, raters, values, {"k": ag.CodedLabels(codes[:3], names)}, domain=ag.scale_domain(7))


def test_bootstrap_groups_and_threads_give_the_same_numbers(monkeypatch):
    """The exact route's weights in groups of chunks, blocks split over threads (cell by cell or
    block by block), give the numbers of one group on one thread."""
    import annotation.agreement.bootstrap as bt

    units, raters, values = _int_table(7, 600, shuffle=False)
    labels = {"g": np.array(["a", "b", "c", "d"])[units % 4], "h": np.array(["x", "y"])[(units // 4) % 2]}

    def run():
        return repr(ag.snapshot_stats(units, raters, values, labels, domain=ag.scale_domain(7), n_boot=90, seed=6))

    monkeypatch.setattr(bt, "_THREADS", 1)
    one = run()
    monkeypatch.setattr(bt, "_THREADS", 2)
    monkeypatch.setattr(bt, "_PARALLEL_ENTRIES", 1)
    monkeypatch.setattr(bt, "_WEIGHT_BYTES", 600 * 20)  # groups of 20 resamples
    monkeypatch.setattr(bt, "_BLOCK_UNITS", 32)
    assert run() == one
    assert repr(ag.agreement_report(units, raters, values, domain=ag.scale_domain(7), n_boot=90, seed=6)) == repr(
        ag.agreement_report(units, raters, values.astype(np.float64), domain=ag.scale_domain(7), n_boot=90, seed=6))


@pytest.mark.parametrize("shuffle", [False, True])
def test_severity_and_deviation_rater_by_rater_are_the_table_figures(shuffle):
    """rq.severity_and_deviation on the int16 table (no float64 tables) gives severity and the
    relative deviation of the float table, bit for bit; a float table with NaN takes the long way."""
    units, raters, values = _int_table(9, 500, shuffle=shuffle)
    fv = values.astype(np.float64)
    diff = rq.diff_from_others(units, fv)
    sev, dev = rq.severity_and_deviation(units, raters, values)
    assert repr(sev) == repr(rq.severity(units, raters, fv, diff=diff))
    assert np.array_equal(dev, rq.relative_deviation(units, fv, diff=diff), equal_nan=True)
    assert np.isfinite(dev).sum() > 100
    fv[3, 1] = np.nan
    sev2, dev2 = rq.severity_and_deviation(units, raters, fv)
    assert repr(sev2) == repr(rq.severity(units, raters, fv))
    assert np.array_equal(dev2, rq.relative_deviation(units, fv), equal_nan=True)


@pytest.mark.parametrize("shuffle", [False, True])
def test_severity_and_deviation_with_images_rated_once(shuffle):
    """Images rated by one rater only (no co-raters: severity leaves their rows out, the deviation
    is NaN) mixed with co-rated ones in the same chunks: the int16 table's figures are still the
    float table's long way, bit for bit (#21: co-rated chunks take a shortcut, mixed ones not)."""
    rng = np.random.default_rng(12)
    per = rng.integers(1, 4, size=600)
    units = np.repeat(np.arange(600) * 3 + 1, per)
    raters = np.concatenate([rng.choice(9, size=k, replace=False) for k in per])
    values = np.where(rng.random((units.size, 5)) < 0.7, 0, rng.integers(0, 8, size=(units.size, 5))).astype(np.int16)
    if shuffle:
        order = rng.permutation(units.size)
        units, raters, values = units[order], raters[order], values[order]
    assert (per == 1).sum() > 100
    fv = values.astype(np.float64)
    diff = rq.diff_from_others(units, fv)
    sev, dev = rq.severity_and_deviation(units, raters, values)
    assert repr(sev) == repr(rq.severity(units, raters, fv, diff=diff))
    assert np.array_equal(dev, rq.relative_deviation(units, fv, diff=diff), equal_nan=True)
    assert np.isnan(dev).sum() > 100 and np.isfinite(dev).sum() > 300


@pytest.mark.parametrize("shuffle", [False, True])
def test_intensity_shift_is_the_least_squares_fit(shuffle):
    """rq.intensity_shift against the additive model fitted directly (a dense design matrix of cell
    and rater effects over the present ratings of cells two or more raters marked present, the
    rater effects summing to 0), with a known lenient rater (+2 on what they mark present)."""
    units, raters, values = _int_table(21, 300, shuffle=shuffle)
    values = values.copy()
    lenient = raters == 3
    values[lenient] = np.where(values[lenient] > 0, np.minimum(values[lenient] + 2, 9), 0)
    got = {s.rater: s for s in rq.intensity_shift(units, raters, values)}
    rows, cols = np.nonzero(values > 0)
    cell = units[rows] * 10 + cols
    counts = dict(zip(*np.unique(cell, return_counts=True), strict=True))
    keep = np.array([counts[c] >= 2 for c in cell])
    rows, cols, cell = rows[keep], cols[keep], cell[keep]
    cells, c_idx = np.unique(cell, return_inverse=True)
    ids, r_idx = np.unique(raters, return_inverse=True)
    design = np.zeros((rows.size + 1, cells.size + ids.size))
    design[np.arange(rows.size), c_idx] = 1.0
    design[np.arange(rows.size), cells.size + r_idx[rows]] = 1.0
    design[-1, cells.size:] = 1.0  # the rater effects sum to 0
    y = np.append(values[rows, cols].astype(np.float64), 0.0)
    b = np.linalg.lstsq(design, y, rcond=None)[0][cells.size:]
    for i, rid in enumerate(ids.tolist()):
        want = b[i] - (b.sum() - b[i]) / (ids.size - 1)
        assert got[rid].shift == pytest.approx(want, abs=1e-9)
        assert got[rid].n_cells == int((r_idx[rows] == i).sum())
    assert got[3].shift > 1.5


def test_sparse_and_reduceat_sums_give_the_same_figures(monkeypatch):
    """Per-unit sums and the kappas' pair-group sums: a sparse product from SPARSE_MIN_ROWS rows a
    chunk, np.add.reduceat below it (no scipy for a small project's report, #21): the same
    integers, so the same report, kappas and rater agreement to the bit; codes of a wide scale
    (sums past int32) included."""
    from annotation.agreement import kappa as kappa_mod
    from annotation.agreement import units as units_mod

    rng = np.random.default_rng(31)
    n_img = 1500
    units = np.repeat(np.arange(n_img), 3)
    raters = np.concatenate([rng.choice(12, 3, replace=False) for _ in range(n_img)])
    narrow = rng.integers(0, 8, (units.size, 6)).astype(np.float64)
    wide = rng.integers(0, 3000, (units.size, 6)).astype(np.float64)
    results = {}
    for floor in (0, 10**9):  # every chunk sparse; every chunk by reduceat
        monkeypatch.setattr(units_mod, "SPARSE_MIN_ROWS", floor)
        monkeypatch.setattr(kappa_mod, "SPARSE_MIN_ROWS", floor)
        results[floor] = [
            repr(ag.agreement_report(units, raters, narrow, n_boot=30, seed=3)),
            repr(ag.pairwise_kappas(units, raters, narrow, domain=list(np.arange(8.0)))),
            # three raters on every image: 1,500 pairs a group, sums of products past int32
            repr(ag.pairwise_kappas(units, np.tile(np.arange(3), n_img), wide, domain=list(np.arange(3000.0)))),
        ]
    assert results[0] == results[10**9]
