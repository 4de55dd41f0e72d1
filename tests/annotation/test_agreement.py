"""Tests of annotation.agreement: published values, the krippendorff package as an oracle,
hand-computed kappas, and the reporting helpers."""

from __future__ import annotations

import math
import warnings

import krippendorff
import numpy as np
import pytest
from scipy import stats

from annotation import agreement as ag

NAN = np.nan
LEVELS: tuple[ag.Level, ...] = ("nominal", "ordinal", "interval", "ratio")

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers
# x 12 units with missing values (rows = observers A..D, columns = units 1..12).
PAPER_DATA = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)
PAPER_ALPHA = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def to_long(matrix: np.ndarray, unit_ids: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Reliability matrix (raters x units) -> long (units, raters, values), NaN cells dropped."""
    r, u = np.nonzero(~np.isnan(matrix))
    ids = np.arange(matrix.shape[1]) if unit_ids is None else unit_ids
    return ids[u], r, matrix[r, u]


def package_alpha(matrix: np.ndarray, level: str, domain: list[float] | None) -> float | None:
    """The krippendorff package's alpha; None where it raises ValueError or returns NaN."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            val = float(
                krippendorff.alpha(reliability_data=matrix, level_of_measurement=level, value_domain=domain)
            )
    except ValueError:
        return None
    return None if math.isnan(val) else val


# ---------------------------------------------------------------------------------------------
# (1) Published values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("domain", [None, [1, 2, 3, 4, 5], list(range(0, 8))])
def test_krippendorff_2011_worked_example(level: ag.Level, domain: list[int] | None) -> None:
    units, raters, values = to_long(PAPER_DATA)
    res = ag.alpha(units, values, level=level, domain=domain, raters=raters)
    assert res.alpha is not None
    assert round(res.alpha, 3) == PAPER_ALPHA[level]
    assert res.reason is None
    assert res.n_units == 11  # unit 12 has a single value and is not pairable
    assert res.n_values == 40
    assert res.observed_disagreement is not None and res.expected_disagreement is not None
    assert res.alpha == pytest.approx(1 - res.observed_disagreement / res.expected_disagreement, abs=1e-12)


def test_krippendorff_2011_nominal_coincidences() -> None:
    # Hand computation from the paper's data. Off-diagonal coincidences: unit 2 {2,2,3,2} gives
    # o_23 = o_32 = 3/3 = 1; unit 6 {1,2,3,4} gives 12 ordered pairs of weight 1/3 = 4; unit 8
    # {1,1,2,1} gives o_12 = o_21 = 1: 8 in all, so D_o = 8/40 = 0.2. Pairable marginals
    # n_1..n_5 = 9, 13, 10, 5, 3 (n = 40): D_e = (40^2 - 384) / (40 * 39) = 1216/1560.
    units, raters, values = to_long(PAPER_DATA)
    res = ag.alpha(units, values, level="nominal", raters=raters)
    assert res.observed_disagreement == pytest.approx(8 / 40)
    assert res.expected_disagreement == pytest.approx(1216 / 1560)
    assert res.alpha == pytest.approx(1 - (8 / 40) / (1216 / 1560))


def test_krippendorff_2011_binary_two_observers() -> None:
    # Section A of the paper: two observers, ten units, nominal alpha = 0.095.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    units = np.tile(np.arange(10), 2)
    res = ag.alpha(units, np.array(a + b, float), level="nominal", domain=(0, 1))
    assert res.alpha is not None and round(res.alpha, 3) == 0.095
    # Paper: D_o = 4 disagreeing pairs of 20 values -> 0.4 (in its normalisation, alpha = 1 -
    # (n-1) o_01 / (n_0 n_1) = 1 - 19 * 4 / (14 * 6)).
    assert res.alpha == pytest.approx(1 - 19 * 4 / (14 * 6))


# ---------------------------------------------------------------------------------------------
# (2) The krippendorff package as an oracle on random sparse data
# ---------------------------------------------------------------------------------------------


def random_matrix(rng: np.random.Generator, scale_max: int) -> np.ndarray:
    n_raters = int(rng.integers(1, 7))
    n_units = int(rng.integers(1, 25))
    density = rng.uniform(0.05, 1.0)
    kind = rng.integers(0, 4)
    if kind == 0:  # zero-inflated intensities
        vals = np.where(
            rng.random((n_raters, n_units)) < 0.8, 0, rng.integers(0, scale_max + 1, (n_raters, n_units))
        )
    elif kind == 1:  # unit effect plus noise (alpha well above 0)
        base = rng.integers(0, scale_max + 1, n_units)
        vals = np.clip(base + rng.integers(-1, 2, (n_raters, n_units)), 0, scale_max)
    elif kind == 2:  # constant (degenerate: no variation)
        vals = np.full((n_raters, n_units), int(rng.integers(0, scale_max + 1)))
    else:
        vals = rng.integers(0, scale_max + 1, (n_raters, n_units))
    m = vals.astype(float)
    m[rng.random(m.shape) > density] = NAN
    return m


@pytest.mark.parametrize("level", LEVELS)
def test_matches_package_on_random_sparse_data(level: ag.Level) -> None:
    rng = np.random.default_rng({"nominal": 1, "ordinal": 2, "interval": 3, "ratio": 4}[level])
    n_defined = n_undefined = 0
    for i in range(300):
        scale_max = int(rng.choice([1, 2, 4, 7]))
        domain = list(range(scale_max + 1))
        m = random_matrix(rng, scale_max)
        unit_ids = rng.permutation(10_000)[: m.shape[1]] if i % 3 else np.arange(m.shape[1])
        units, raters, values = to_long(m, unit_ids)
        order = rng.permutation(units.size)  # row order must not matter
        units, raters, values = units[order], raters[order], values[order]
        if i % 5 == 0:
            units = np.array([f"img-{u}" for u in units])  # string ids work too
        ours = ag.alpha(units, values, level=level, domain=domain, raters=raters)
        ref = package_alpha(m, level, domain)
        if ref is None:
            n_undefined += 1
            assert ours.alpha is None
            assert ours.reason in (ag.REASON_NO_PAIRABLE, ag.REASON_NO_VARIATION)
        else:
            n_defined += 1
            assert ours.alpha is not None and abs(ours.alpha - ref) < 1e-9, (i, ours, ref)
    assert n_defined >= 120 and n_undefined >= 20


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_all_matches_package_per_column_with_missing(level: ag.Level) -> None:
    # Several emotions at once, each with its own missing pattern (NaN per cell).
    rng = np.random.default_rng(7)
    domain = list(range(8))
    for _ in range(20):
        n_raters, n_units, n_em = 5, 40, 6
        full = rng.integers(0, 8, (n_em, n_raters, n_units)).astype(float)
        full[rng.random(full.shape) < 0.4] = NAN
        full[0] = np.where(np.isnan(full[0]), NAN, 3.0)  # one degenerate emotion
        rr, uu = np.meshgrid(np.arange(n_raters), np.arange(n_units), indexing="ij")
        values2d = full.reshape(n_em, -1).T
        results = ag.alpha_all(uu.ravel(), rr.ravel(), values2d, level=level, domain=domain)
        for e in range(n_em):
            ref = package_alpha(full[e], level, domain)
            if ref is None:
                assert results[e].alpha is None and results[e].reason == ag.REASON_NO_VARIATION
            else:
                assert results[e].alpha is not None and abs(results[e].alpha - ref) < 1e-9


def test_uneven_domain_and_float_values_match_package() -> None:
    rng = np.random.default_rng(11)
    domain = [0.0, 0.5, 2.0, 7.0]
    for level in LEVELS:
        for _ in range(30):
            m = rng.choice(domain, size=(4, 15)).astype(float)
            m[rng.random(m.shape) < 0.3] = NAN
            units, raters, values = to_long(m)
            ours = ag.alpha(units, values, level=level, domain=domain, raters=raters)
            ref = package_alpha(m, level, domain)
            assert (ours.alpha is None) == (ref is None)
            if ref is not None:
                assert ours.alpha is not None and abs(ours.alpha - ref) < 1e-9


def test_large_units_use_wide_packing_and_match_package() -> None:
    # 300 raters on a few units: the packed moments need int64 and the elementwise branch.
    rng = np.random.default_rng(5)
    m = np.clip(rng.integers(0, 8, 6)[None, :] + rng.integers(-2, 3, (300, 6)), 0, 7).astype(float)
    units, raters, values = to_long(m)
    ours = ag.alpha(units, values, level="interval", domain=range(8), raters=raters)
    ref = package_alpha(m, "interval", list(range(8)))
    assert ours.alpha is not None and ref is not None and abs(ours.alpha - ref) < 1e-9


def test_moment_and_count_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    m = rng.integers(0, 8, (6, 50)).astype(float)
    m[rng.random(m.shape) < 0.5] = NAN
    units, raters, values = to_long(m)
    fast = ag.alpha(units, values, level="interval", domain=range(8))
    monkeypatch.setattr(ag.units, "_packing_dtype", lambda bits: None)  # force the count path
    slow = ag.alpha(units, values, level="interval", domain=range(8))
    assert fast.alpha is not None and slow.alpha is not None
    assert abs(fast.alpha - slow.alpha) < 1e-12
    assert fast.n_units == slow.n_units and fast.n_values == slow.n_values


def test_undefined_cases_return_none_with_reason() -> None:
    # No unit with two ratings: the package raises ValueError.
    units, values = np.array([1, 2, 3]), np.array([0.0, 3.0, 5.0])
    with pytest.raises(ValueError):
        krippendorff.alpha(reliability_data=[[0, 3, 5]], value_domain=list(range(8)))
    res = ag.alpha(units, values, domain=range(8))
    assert res.alpha is None and res.reason == ag.REASON_NO_PAIRABLE and res.n_units == 0
    # No variation with an explicit domain: the package returns NaN (0/0).
    m = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, NAN]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert math.isnan(krippendorff.alpha(reliability_data=m, value_domain=list(range(8))))
    u, r, v = to_long(m)
    res = ag.alpha(u, v, domain=range(8), raters=r)
    assert res.alpha is None and res.reason == ag.REASON_NO_VARIATION
    assert res.n_units == 2 and res.n_values == 4 and res.observed_disagreement == 0.0
    # ... and without a domain the package raises (one-value domain); we still say why.
    with pytest.raises(ValueError):
        krippendorff.alpha(reliability_data=m)
    assert ag.alpha(u, v).reason == ag.REASON_NO_VARIATION
    # Empty input.
    assert ag.alpha(np.array([], int), np.array([])).reason == ag.REASON_NO_PAIRABLE


def test_unused_scale_points_do_not_change_alpha() -> None:
    units, raters, values = to_long(PAPER_DATA)
    for level in LEVELS:
        a = ag.alpha(units, values, level=level, domain=[1, 2, 3, 4, 5]).alpha
        b = ag.alpha(units, values, level=level, domain=range(0, 11)).alpha
        assert a is not None and b is not None and abs(a - b) < 1e-12


def test_small_scale_0_to_2() -> None:
    m = np.array([[0, 1, 2, 2, 0, 1], [0, 1, 2, 1, 0, 2], [0, 2, 2, 2, NAN, 1]], float)
    units, raters, values = to_long(m)
    for level in LEVELS:
        ours = ag.alpha(units, values, level=level, domain=ag.scale_domain(2), raters=raters)
        ref = package_alpha(m, level, [0, 1, 2])
        assert ours.alpha is not None and ref is not None and abs(ours.alpha - ref) < 1e-12


def test_out_of_domain_value_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"values2d\[1, 0\] = 8\.0 is not in the value domain"):
        ag.alpha(np.array([1, 1]), np.array([3.0, 8.0]), domain=range(8))
    with pytest.raises(ValueError, match="not in the value domain"):
        ag.alpha(np.array([1, 1]), np.array([3.0, 2.5]), domain=range(8))
    with pytest.raises(ValueError, match="not in the value domain"):
        ag.alpha(np.array([1, 1, 2]), np.array([3.0, NAN, -1.0]), domain=range(8))
    with pytest.raises(ValueError, match="level must be one of"):
        ag.alpha(np.array([1, 1]), np.array([3.0, 2.0]), level="cardinal")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# (3) Duplicates
# ---------------------------------------------------------------------------------------------


def test_duplicate_unit_rater_pair_is_an_error() -> None:
    units = np.array([10, 10, 11, 11, 11])
    raters = np.array([1, 2, 1, 2, 2])
    values = np.array([[1.0], [2.0], [3.0], [3.0], [4.0]])
    with pytest.raises(ValueError, match="unit 11 is rated more than once by rater 2"):
        ag.alpha_all(units, raters, values)
    with pytest.raises(ValueError, match="unit 'b' is rated more than once by rater 'x'"):
        ag.alpha(np.array(["a", "b", "b"]), np.array([1.0, 2.0, 3.0]), raters=np.array(["x", "x", "x"]))


# ---------------------------------------------------------------------------------------------
# (4) Bootstrap
# ---------------------------------------------------------------------------------------------


def well_behaved(seed: int, n_units: int = 200, n_em: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    units = np.repeat(np.arange(n_units), 4)
    raters = np.tile(np.arange(4), n_units)
    base = rng.integers(0, 8, (n_units, n_em))[units]
    values = np.clip(base + rng.integers(-1, 2, base.shape), 0, 7).astype(float)
    return units, raters, values


def test_bootstrap_is_reproducible_and_contains_point_estimate() -> None:
    units, raters, values = well_behaved(0)
    ci1 = ag.bootstrap_ci(units, values, domain=range(8), n_boot=500, seed=42)
    ci2 = ag.bootstrap_ci(units, values, domain=range(8), n_boot=500, seed=42)
    ci3 = ag.bootstrap_ci(units, values, domain=range(8), n_boot=500, seed=43)
    assert ci1 == ci2
    assert ci1 != ci3
    point = ag.alpha_all(units, raters, values, domain=range(8))
    for (lo, hi), res in zip(ci1, point, strict=True):
        assert lo is not None and hi is not None and res.alpha is not None
        assert lo < res.alpha < hi
        assert hi - lo < 0.2


@pytest.mark.parametrize("level", LEVELS)
def test_vectorised_bootstrap_equals_naive_loop(level: ag.Level) -> None:
    rng = np.random.default_rng(9)
    n_units, n_raters, n_em = 25, 4, 3
    full = rng.integers(0, 5, (n_em, n_raters, n_units)).astype(float)
    full[rng.random(full.shape) < 0.35] = NAN
    full[2, :, :] = np.where(
        np.isnan(full[2]), NAN, np.where(rng.random((n_raters, n_units)) < 0.9, 0.0, 4.0)
    )
    rr, uu = np.meshgrid(np.arange(n_raters), np.arange(n_units) * 7 + 3, indexing="ij")
    units = uu.ravel()
    values2d = full.reshape(n_em, -1).T
    domain = list(range(5))
    n_boot = 40
    reps = ag.bootstrap_alphas(units, values2d, level=level, domain=domain, n_boot=n_boot, seed=5)
    idx = ag.resample_indices(n_units, n_boot, seed=5)
    uniq = np.unique(units)
    for b in range(n_boot):
        # naive: rebuild the long table of the resample, each draw a distinct unit
        rows = [np.flatnonzero(units == uniq[i]) for i in idx[b]]
        new_units = np.concatenate([np.full(r.size, k) for k, r in enumerate(rows)])
        new_vals = values2d[np.concatenate(rows)]
        for e in range(n_em):
            res = ag.alpha(new_units, new_vals[:, e], level=level, domain=domain)
            if res.alpha is None:
                assert math.isnan(reps[b, e])
            else:
                assert abs(res.alpha - reps[b, e]) < 1e-9


def test_bootstrap_undefined_alpha_gives_none_interval() -> None:
    units = np.array([1, 1, 2, 2, 3])
    values = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 1.0], [0.0, 1.0], [0.0, 3.0]])
    cis = ag.bootstrap_ci(units, values, domain=range(8), n_boot=50)
    assert cis[0] == (None, None)
    lo, hi = cis[1]
    assert lo is not None and hi is not None and lo <= hi


def test_bootstrap_argument_checks() -> None:
    units, _, values = well_behaved(1, 20, 1)
    with pytest.raises(ValueError, match="n_boot"):
        ag.bootstrap_ci(units, values, n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        ag.bootstrap_ci(units, values, confidence=1.5)


# ---------------------------------------------------------------------------------------------
# (5) Kappa, Mann-Whitney, Spearman
# ---------------------------------------------------------------------------------------------


def test_quadratic_kappa_hand_computed_3x3() -> None:
    # Categories 0..2, quadratic weights w_ij = (i - j)^2.
    # a = 0 1 2 2 1 0, b = 0 2 2 1 1 0: disagreements (1,2) and (2,1), each weight 1 -> observed
    # mean weighted disagreement 2/6 = 1/3. Marginals are uniform (2,2,2) for both raters, so the
    # expected one is (1/9) * sum_ij (i-j)^2 = 12/9 = 4/3. kappa = 1 - (1/3)/(4/3) = 0.75.
    k, reason = ag.quadratic_kappa([0, 1, 2, 2, 1, 0], [0, 2, 2, 1, 1, 0], categories=[0, 1, 2])
    assert reason is None and k == pytest.approx(0.75)


def test_quadratic_kappa_hand_computed_2x2() -> None:
    # a = 0 0 1 1, b = 0 1 1 1: one disagreement in four (0.25); p_a = (.5,.5), p_b = (.25,.75),
    # expected disagreement .5*.75 + .5*.25 = .5, kappa = 1 - .25/.5 = 0.5 (= Cohen's kappa).
    k, _ = ag.quadratic_kappa([0, 0, 1, 1], [0, 1, 1, 1], categories=[0, 1])
    assert k == pytest.approx(0.5)


def confusion_kappa(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Textbook weighted kappa from the confusion matrix (independent implementation)."""
    o = np.zeros((k, k))
    for x, y in zip(a.astype(int), b.astype(int), strict=True):
        o[x, y] += 1
    o /= o.sum()
    e = np.outer(o.sum(1), o.sum(0))
    w = (np.arange(k)[:, None] - np.arange(k)[None, :]) ** 2 / (k - 1) ** 2
    return float(1 - (w * o).sum() / (w * e).sum())


def test_quadratic_kappa_matches_confusion_matrix_form_and_undefined_cases() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        a = rng.integers(0, 8, 30).astype(float)
        b = np.clip(a + rng.integers(-2, 3, 30), 0, 7)
        k, _ = ag.quadratic_kappa(a, b, categories=range(8))
        assert k == pytest.approx(confusion_kappa(a, b, 8), abs=1e-12)
    assert ag.quadratic_kappa([3], [3], categories=range(8))[0] is None
    k, reason = ag.quadratic_kappa([2, 2, 2], [2, 2, 2], categories=range(8))
    assert k is None and reason is not None and "no variance" in reason
    # one rater constant at a different value: defined, and 0 (no better than chance)
    assert ag.quadratic_kappa([2, 2, 2], [1, 3, 2], categories=range(8))[0] == pytest.approx(0.0)
    # NaN pairs are dropped
    assert ag.quadratic_kappa([0, 1, NAN, 1], [0, 1, 5, 1], categories=range(8))[0] == pytest.approx(1.0)


def test_pairwise_kappas_match_pairwise_hand_computation() -> None:
    rng = np.random.default_rng(4)
    n_units, n_raters = 60, 5
    units, raters = [], []
    for u in range(n_units):
        for r in rng.choice(n_raters, size=3, replace=False):
            units.append(u)
            raters.append(int(r) + 100)
    units_a, raters_a = np.array(units), np.array(raters)
    values = rng.integers(0, 8, (units_a.size, 2)).astype(float)
    values[rng.random(values.shape) < 0.1] = NAN
    kappas = ag.pairwise_kappas(units_a, raters_a, values, domain=range(8))
    seen = 0
    for pk in kappas:
        assert pk.rater_a < pk.rater_b
        sa = {u: values[i, pk.emotion] for i, u in enumerate(units) if raters[i] == pk.rater_a}
        sb = {u: values[i, pk.emotion] for i, u in enumerate(units) if raters[i] == pk.rater_b}
        common = [u for u in sa if u in sb and not (np.isnan(sa[u]) or np.isnan(sb[u]))]
        assert pk.n_common == len(common)
        k, _ = ag.quadratic_kappa([sa[u] for u in common], [sb[u] for u in common], categories=range(8))
        if k is None:
            assert pk.kappa is None
        else:
            assert pk.kappa == pytest.approx(k, abs=1e-12)
            seen += 1
    assert seen >= 15 and {pk.emotion for pk in kappas} == {0, 1}


def test_rater_agreement_leave_one_out() -> None:
    units, raters, values = well_behaved(3, 80, 2)
    values[raters == 2] = np.random.default_rng(0).integers(0, 8, (80, 2))  # rater 2 is noise
    ra = ag.rater_agreement(units, raters, values, domain=range(8))
    kappas = ag.pairwise_kappas(units, raters, values, domain=range(8))
    by = {(x.rater, x.emotion): x for x in ra}
    for rid in range(4):
        for e in range(2):
            mine = [pk.kappa for pk in kappas if pk.emotion == e and rid in (pk.rater_a, pk.rater_b)]
            assert by[(rid, e)].mean_kappa == pytest.approx(np.mean(mine))
            keep = raters != rid
            assert by[(rid, e)].alpha_without == ag.alpha(units[keep], values[keep, e], domain=range(8)).alpha
    for e in range(2):
        noisy = by[(2, e)]
        assert noisy.alpha_without is not None and noisy.alpha_with is not None
        assert noisy.alpha_without > noisy.alpha_with
        assert all(noisy.mean_kappa < by[(r, e)].mean_kappa for r in (0, 1, 3))  # type: ignore[operator]


def test_annotator_test_wiring() -> None:
    cand = [0.30, 0.35, 0.28, None, 0.33]
    hum = [0.31, 0.29, 0.36, 0.32, 0.30, float("nan")]
    res = ag.annotator_test(cand, hum)
    ref = stats.mannwhitneyu(
        [0.30, 0.35, 0.28, 0.33], [0.31, 0.29, 0.36, 0.32, 0.30], alternative="two-sided"
    )
    assert res.p_value == pytest.approx(ref.pvalue) and res.u_statistic == pytest.approx(ref.statistic)
    assert res.p_value is not None and res.p_value > 0.05
    assert res.could_be_annotator is True and res.verdict == "could be an annotator"
    assert (res.n_candidate, res.n_human) == (4, 5)
    low = ag.annotator_test([0.01, 0.02, 0.0, 0.03, 0.01, 0.02], [0.3, 0.4, 0.35, 0.5, 0.45, 0.38])
    assert low.could_be_annotator is False and low.verdict == "differs from the annotators"
    assert low.p_value is not None and low.p_value <= 0.05
    empty = ag.annotator_test([], [0.3])
    assert empty.could_be_annotator is None and empty.p_value is None and "undefined" in empty.verdict


def test_candidate_test_selects_the_right_samples() -> None:
    def pk(e: int, a: str, b: str, k: float | None) -> ag.PairKappa:
        return ag.PairKappa(e, a, b, 10, k, None)

    kappas = [
        pk(0, "h1", "h2", 0.5),
        pk(0, "h1", "h3", 0.6),
        pk(0, "h2", "h3", 0.55),
        pk(0, "h1", "model", 0.1),
        pk(0, "h2", "model", 0.2),
        pk(0, "h3", "model", None),
        pk(0, "model", "other_model", 0.9),
        pk(0, "h1", "other_model", 0.7),
        pk(1, "h1", "model", 0.4),
    ]
    res = ag.candidate_test(kappas, "model", humans={"h1", "h2", "h3"}, emotion=0)
    ref = stats.mannwhitneyu([0.1, 0.2], [0.5, 0.6, 0.55], alternative="two-sided")
    assert (res.n_candidate, res.n_human) == (2, 3)
    assert res.p_value == pytest.approx(ref.pvalue)
    pooled = ag.candidate_test(kappas, "model", humans={"h1", "h2", "h3"})
    assert pooled.n_candidate == 3
    # a human rater as candidate: its kappas vs the kappas among the other humans
    h1 = ag.candidate_test(kappas, "h1", humans={"h1", "h2", "h3"}, emotion=0)
    assert (h1.n_candidate, h1.n_human) == (2, 1)


def test_spearman_vs_median() -> None:
    units = np.array([1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 5])
    values = np.array([[0, 1, 2, 3, 5, 6, 7, 7, 1, 1, 4]], float).T
    # medians: unit1 1, unit2 4, unit3 7, unit4 1, unit5 4
    model_units = np.array([5, 4, 3, 2, 1, 99])
    scores = np.array([[0.5], [0.2], [0.9], [0.4], [0.1], [0.3]])
    (res,) = ag.spearman_vs_median(units, values, model_units, scores)
    ref = stats.spearmanr([0.1, 0.4, 0.9, 0.2, 0.5], [1, 4, 7, 1, 4])
    assert res.n == 5 and res.rho == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue)
    (few,) = ag.spearman_vs_median(units, values, model_units[:2], scores[:2])
    assert few.rho is None and few.reason is not None and few.n == 2
    flat = ag.spearman_vs_median(units, values, model_units, np.full((6, 1), 0.5))[0]
    assert flat.rho is None and flat.reason is not None and "variance" in flat.reason
    with pytest.raises(ValueError, match="model_units"):
        ag.spearman_vs_median(units, values, np.array([1, 1]), np.array([[0.1], [0.2]]))


# ---------------------------------------------------------------------------------------------
# (6) Binary mode
# ---------------------------------------------------------------------------------------------


def test_binary_vote_patterns_and_conditional_warning() -> None:
    rows = []  # (unit, rater, emotion, vote)
    # emotion 0: two "3:0" units, one "2:1", one "1:1", one "2:0", one single-vote unit
    for u, votes in enumerate([[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0], [1, 1], [0]]):
        rows += [(u, r, 0, v) for r, v in enumerate(votes)]
    # emotion 1: one "0:2" unit
    rows += [(0, 0, 1, 0), (0, 1, 1, 0)]
    u, r, e, v = (np.array(c) for c in zip(*rows, strict=True))
    res = ag.binary_agreement(u, r, e, v, n_emotions=3)
    assert res[0].patterns == {"3:0": 2, "2:1": 1, "2:0": 1, "1:1": 1}
    assert list(res[0].patterns) == ["3:0", "2:1", "2:0", "1:1"]
    assert res[0].n_units_multi == 5
    assert res[0].warning is None
    ref = ag.alpha(u[e == 0], v[e == 0].astype(float), level="nominal", domain=(0, 1))
    assert res[0].alpha == ref
    assert res[1].patterns == {"0:2": 1} and res[1].alpha.reason == ag.REASON_NO_VARIATION
    assert res[2].patterns == {} and res[2].alpha.reason == ag.REASON_NO_PAIRABLE
    cond = ag.binary_agreement(u, r, e, v, n_emotions=3, conditional_design=True)
    assert all(c.warning == ag.CONDITIONAL_DESIGN_WARNING for c in cond)
    assert "biased by the conditional design" in ag.CONDITIONAL_DESIGN_WARNING


def test_binary_rejects_bad_votes_and_duplicates() -> None:
    with pytest.raises(ValueError, match="votes must be 0"):
        ag.binary_agreement([1, 1], [1, 2], [0, 0], [1, 2], n_emotions=1)
    with pytest.raises(ValueError, match="rated more than once"):
        ag.binary_agreement([1, 1], [1, 1], [0, 0], [1, 0], n_emotions=1)
    # same rater, same image, different emotions is fine
    ag.binary_agreement([1, 1], [1, 1], [0, 1], [1, 0], n_emotions=2)


# ---------------------------------------------------------------------------------------------
# (7) Strata
# ---------------------------------------------------------------------------------------------


def test_strata_breakdown_marks_thin_strata() -> None:
    units, raters, values = well_behaved(6, 50, 2)
    strata = np.where(units < 40, "woman", "man")  # 40 vs 10 units
    res = ag.alpha_by_stratum(units, values, strata, domain=range(8), n_boot=200, min_units=30)
    by = {(s.stratum, s.emotion): s for s in res}
    assert set(by) == {("man", 0), ("man", 1), ("woman", 0), ("woman", 1)}
    for e in range(2):
        w, m = by[("woman", e)], by[("man", e)]
        assert w.reliable and w.alpha.n_units == 40 and w.note is None
        assert not m.reliable and m.alpha.n_units == 10 and m.note is not None and "fewer than 30" in m.note
        assert w.alpha == ag.alpha(units[units < 40], values[units < 40, e], domain=range(8))
        assert w.ci_low is not None and w.ci_high is not None and w.ci_low < w.ci_high
    with pytest.raises(ValueError, match="constant within a unit"):
        ag.alpha_by_stratum(units, values, np.where(raters == 0, "a", "b"), n_boot=10)


# ---------------------------------------------------------------------------------------------
# (8) Zero inflation and the full report
# ---------------------------------------------------------------------------------------------


def test_nonzero_share_and_warning() -> None:
    x = np.zeros((1000, 3))
    x[:100, 0] = 3  # 10% non-zero, 100 ratings: fine
    x[:20, 1] = 2  # only 20 non-zero: warn
    x[:40, 2] = 1  # 40 non-zero but 4%: warn
    x[500:, 2] = NAN  # 500 rated -> 8%: fine again? no: 40 of 500 = 8% >= 5% and >= 30
    res = ag.nonzero_shares(x)
    assert [r.n_nonzero for r in res] == [100, 20, 40]
    assert res[0].nonzero_share == pytest.approx(0.1) and res[0].warning is None
    assert res[1].warning is not None and "20 of 1000" in res[1].warning
    assert res[2].n_ratings == 500 and res[2].warning is None
    assert ag.nonzero_shares(x, min_share=0.09)[2].warning is not None
    assert ag.nonzero_shares(np.full((3, 1), NAN))[0].nonzero_share is None


def test_agreement_report_bundles_alpha_interval_and_warnings() -> None:
    units, raters, values = well_behaved(8, 100, 2)
    values[:, 1] = 0.0
    values[:5, 1] = 1.0
    rep = ag.agreement_report(units, raters, values, domain=range(8), n_boot=200, seed=1)
    assert [r.emotion for r in rep] == [0, 1]
    assert rep[0].alpha == ag.alpha(units, values[:, 0], domain=range(8))
    assert (rep[0].ci_low, rep[0].ci_high) == ag.bootstrap_ci(
        units, values, domain=range(8), n_boot=200, seed=1
    )[0]
    assert rep[0].warnings == ()
    assert rep[1].nonzero.n_nonzero == 5 and any("few non-zero" in w for w in rep[1].warnings)


def test_scale_domain() -> None:
    assert ag.scale_domain(7) == (0, 1, 2, 3, 4, 5, 6, 7)
    assert ag.scale_domain(2) == (0, 1, 2)
    with pytest.raises(ValueError):
        ag.scale_domain(0)


# ---------------------------------------------------------------------------------------------
# (9) Stratum resamples: the main resamples restricted to the stratum; the one-call snapshot
# ---------------------------------------------------------------------------------------------


def naive_stratum_resamples(labels: np.ndarray, n_boot: int, seed: int) -> list[list[np.ndarray]]:
    """The documented rule, written out: stratum j's resample b is the draws of main resample b
    that fall in j (as many as there are: the overall resample's weights restricted to the stratum)."""
    main = ag.resample_indices(labels.size, n_boot, seed)
    return [[main[b][labels[main[b]] == j] for b in range(n_boot)] for j in range(int(labels.max()) + 1)]


@pytest.mark.parametrize("level", ["interval", "nominal", "ordinal"])
def test_stratum_bootstrap_equals_naive_loop(level: ag.Level) -> None:
    rng = np.random.default_rng(11)
    n_units, n_raters, n_em, n_boot, seed = 40, 3, 2, 30, 7
    units = np.repeat(np.arange(n_units) * 3 + 1, n_raters)
    values = rng.integers(0, 5, (units.size, n_em)).astype(float)
    values[rng.random(values.shape) < 0.2] = NAN
    labels = np.array([0] * 25 + [1] * 12 + [2] * 3)  # per unit; stratum 2 is tiny
    domain = list(range(5))
    p = ag._prepare(units, values, level=level, domain=domain, raters=None)
    st = ag._unit_stats(p)
    key = ag._make_strata(labels.astype(np.intp), 3)
    main, per_key = ag._run_bootstrap(p, ag._boot_plan(p, st), n_boot, seed, [key])
    assert main is not None
    np.testing.assert_array_equal(
        main, ag.bootstrap_alphas(units, values, level=level, domain=domain, n_boot=n_boot, seed=seed)
    )
    uniq = np.unique(units)
    for j, rows in enumerate(naive_stratum_resamples(labels, n_boot, seed)):
        for b, draw in enumerate(rows):
            assert np.all(labels[draw] == j)
            if draw.size == 0:
                assert np.isnan(per_key[0][j][b]).all()
                continue
            parts = [np.flatnonzero(units == uniq[i]) for i in draw]
            new_units = np.concatenate([np.full(r.size, k) for k, r in enumerate(parts)])
            new_vals = values[np.concatenate(parts)]
            for e in range(n_em):
                res = ag.alpha(new_units, new_vals[:, e], level=level, domain=domain)
                got = per_key[0][j][b, e]
                if res.alpha is None:
                    assert math.isnan(got)
                else:
                    assert abs(res.alpha - got) < 1e-9


def test_snapshot_stats_equals_the_single_calls() -> None:
    rng = np.random.default_rng(12)
    n_units = 90
    units = np.repeat(np.arange(n_units), 3)
    raters = np.concatenate([rng.choice(6, 3, replace=False) for _ in range(n_units)])
    values = np.where(rng.random((units.size, 3)) < 0.6, 0, rng.integers(1, 8, (units.size, 3))).astype(float)
    values[rng.random(values.shape) < 0.05] = NAN
    strata = {"gender": np.array(["f", "m"])[units % 2], "age": np.array(["a", "b", "c"])[(units // 2) % 3]}
    dom = ag.scale_domain(7)
    snap = ag.snapshot_stats(units, raters, values, strata, domain=dom, n_boot=120, seed=3)
    assert snap.report == ag.agreement_report(units, raters, values, domain=dom, n_boot=120, seed=3)
    assert snap.kappas == ag.pairwise_kappas(units, raters, values, domain=dom)
    assert snap.raters == ag.rater_agreement(units, raters, values, domain=dom)
    assert set(snap.strata) == {"gender", "age"}
    for name, lab in strata.items():
        assert snap.strata[name] == ag.alpha_by_stratum(units, values, lab, domain=dom, n_boot=120, seed=3)
    with pytest.raises(ValueError, match="constant within a unit"):
        ag.snapshot_stats(
            units, raters, values, {"bad": np.where(raters == 0, "x", "y")}, domain=dom, n_boot=10
        )


@pytest.mark.parametrize("level", ["interval", "ordinal"])
def test_rater_agreement_matches_recomputation_with_missing(level: ag.Level) -> None:
    rng = np.random.default_rng(13)
    units, raters = [], []
    for u in range(70):
        k = int(rng.integers(2, 6))  # 2..5 ratings per unit: several rating counts
        for r in rng.choice(7, k, replace=False):
            units.append(u)
            raters.append(int(r))
    u_a, r_a = np.array(units), np.array(raters)
    values = rng.integers(0, 8, (u_a.size, 2)).astype(float)
    values[rng.random(values.shape) < 0.15] = NAN
    ra = ag.rater_agreement(u_a, r_a, values, domain=range(8), level=level)
    for x in ra:
        keep = r_a != x.rater
        without = ag.alpha(u_a[keep], values[keep, x.emotion], level=level, domain=range(8)).alpha
        with_all = ag.alpha(u_a, values[:, x.emotion], level=level, domain=range(8)).alpha
        assert x.alpha_without is not None and without is not None and x.alpha_with is not None
        if level == "interval":  # the integer leave-one-out shortcut is bit-identical
            assert (x.alpha_without, x.alpha_with) == (without, with_all)
        else:  # recomputed per rater on all emotions at once: equal up to rounding
            assert x.alpha_without == pytest.approx(without, abs=1e-12)
            assert x.alpha_with == pytest.approx(with_all, abs=1e-12)


def test_moment_rows_from_the_code_table_are_the_unpacked_rows() -> None:
    """The boot plan's per-unit features looked up by packed code equal the ones computed per unit."""
    from annotation.agreement import bootstrap as bs

    rng = np.random.default_rng(31)
    for n, per in [(5000, 3), (300, 7)]:
        units = np.repeat(np.arange(n), per)
        vals = rng.integers(0, 8, (units.size, 4)).astype(float)
        vals[rng.random(vals.shape) < 0.3] = NAN
        p = ag._prepare(units, vals, level="interval", domain=ag.scale_domain(7), raters=None)
        st = ag._unit_stats(p)
        table = bs._moment_table(st, p.n_units)
        # three ratings: a small table; seven: codes too many for 300 units (then computed per unit)
        assert (table is None) == (per == 7)
        for j in range(4):
            got = bs._moment_rows(st, j, st.packed_by_emotion(), table)
            assert got.dtype == np.float64 and np.array_equal(got, bs._moment_rows(st, j))
            assert np.array_equal(got, ag._boot_features_t(p, st)[0][4 * j : 4 * j + 4])


def test_strata_points_from_one_pass_of_histograms_equal_each_subset_prepared_alone() -> None:
    """The strata's point alphas (every key's histograms filled in one pass over the renumbered
    codes) are, bit for bit, the alphas of each stratum's units on their own."""
    from annotation.agreement import strata as stm

    rng = np.random.default_rng(41)
    n = 4000
    units = np.repeat(np.arange(n), 3)
    vals = np.where(rng.random((units.size, 5)) < 0.7, 0, rng.integers(1, 8, (units.size, 5))).astype(float)
    vals[rng.random(vals.shape) < 0.1] = NAN
    p = ag._prepare(units, vals, level="interval", domain=ag.scale_domain(7), raters=None)
    st = ag._unit_stats(p)
    g = np.arange(p.n_units)
    keys = [(g % 4, np.arange(4)), ((g // 5) % 3, np.arange(3)), (np.where(g < 40, 0, 1), np.arange(2))]
    got = stm._strata_points(p, st, keys)
    assert stm._dense_codes(st) is not None  # the histogram route, not the fallback
    for (labels, ids), by_stratum in zip(keys, got, strict=True):
        for k in range(ids.size):
            assert repr(by_stratum[k]) == repr(stm._subset_alpha(p, st, labels == k))
