"""The measurement model (annotation/agreement/ratermodel.py) on simulated data with known truth.

EmoNet-like data: 40 emotions on 0..7, about 20% of ratings non-zero, mean interval alpha near
0.2, 8 experts who differ in presence threshold, intensity shift and noise, 4 ratings per image
(the HQ set's size: 2,500 images). Seeded; each fit takes a few seconds and is shared by a module
fixture. The tolerances are stated in docs/agreement.md, "Measurement model".
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from annotation.agreement import alpha_all
from annotation.agreement import ratermodel as rm

N_IMAGES, K, N_RATERS = 2500, 4, 8


def _median_and_mean(sim: rm.Simulated) -> tuple[np.ndarray, np.ndarray]:
    # simulate_ratings writes each image's K ratings as consecutive rows.
    vv = sim.values.reshape(N_IMAGES, K, -1)
    return np.median(vv, axis=1).T, vv.mean(axis=1).T


def _rmse(x: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(((x - truth) ** 2).mean()))


def _spearman_mean(x: np.ndarray, truth: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(np.mean([spearmanr(a, b).statistic for a, b in zip(x, truth, strict=True)]))


@pytest.fixture(scope="module")
def differ() -> tuple[rm.Simulated, rm.RaterModelFit, float]:
    sim = rm.simulate_ratings(np.random.default_rng(7), n_images=N_IMAGES, ratings_per_image=K, n_raters=N_RATERS)
    t0 = time.perf_counter()
    fit = rm.fit_rater_model(sim.units, sim.raters, sim.values, scale_max=7)
    return sim, fit, time.perf_counter() - t0


@pytest.fixture(scope="module")
def same() -> tuple[rm.Simulated, rm.RaterModelFit]:
    sim = rm.simulate_ratings(np.random.default_rng(8), n_images=N_IMAGES, ratings_per_image=K, n_raters=N_RATERS,
                              raters_differ=False)
    return sim, rm.fit_rater_model(sim.units, sim.raters, sim.values, scale_max=7)


def test_the_simulation_is_emonet_like(differ):
    sim, _fit, _t = differ
    share = float((sim.values > 0).mean())
    assert 0.15 <= share <= 0.25
    alphas = [a.alpha for a in alpha_all(sim.units, sim.raters, sim.values, domain=tuple(range(8)))]
    mean_alpha = float(np.mean([a for a in alphas if a is not None]))
    assert 0.15 <= mean_alpha <= 0.25


def test_fit_converges_quickly_and_reports_it(differ):
    _sim, fit, seconds = differ
    assert fit.converged and not fit.warnings
    assert fit.iterations < 60
    # The goal is < 5 s on the 2-core machine; the suite allows for a loaded machine.
    assert seconds < 15


def test_rater_effects_are_recovered(differ):
    sim, fit, _t = differ
    pres_err = np.abs(fit.presence_shift - sim.presence_shift)
    int_err = np.abs(fit.intensity_latent - sim.intensity_latent)
    # Stated tolerance: mean absolute error under 0.12 logits (presence) and 0.15 (intensity, latent).
    assert pres_err.mean() < 0.12
    assert int_err.mean() < 0.15
    # The rater's overall tendency (mean over emotions) is recovered nearly without shrinkage.
    for est, true in ((fit.presence_shift, sim.presence_shift), (fit.intensity_latent, sim.intensity_latent)):
        slope = np.polyfit(true.mean(axis=1), est.mean(axis=1), 1)[0]
        assert 0.85 <= slope <= 1.15
    corr = np.corrcoef(np.log(fit.discrimination), np.log(sim.discrimination))[0, 1]
    assert corr > 0.9


def _true_tau(x: np.ndarray) -> float:
    """The sd of the true effects around their rater's mean, the emotion's centring undone (the
    quantity the fit's tau estimates): rows and columns removed, (R - 1)(E - 1) degrees of freedom."""
    dev = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    return float(np.sqrt((dev ** 2).sum() / ((x.shape[0] - 1) * (x.shape[1] - 1))))


@pytest.fixture(scope="module")
def more_seeds(differ) -> list[tuple[rm.Simulated, rm.RaterModelFit]]:
    """The differing-raters fit and three more seeds of the same design (coverage is a rate over
    many intervals; 320 per fit are too few to tell 0.91 from 0.95)."""
    out = [differ[:2]]
    for seed in (21, 22, 23):
        sim = rm.simulate_ratings(np.random.default_rng(seed), n_images=N_IMAGES, ratings_per_image=K,
                                  n_raters=N_RATERS)
        out.append((sim, rm.fit_rater_model(sim.units, sim.raters, sim.values, scale_max=7)))
    return out


def test_intervals_cover_close_to_nominal(more_seeds, same):
    pres, inten = [], []
    for sim, fit in more_seeds:
        pres.append(float((np.abs(fit.presence_shift - sim.presence_shift) <= 1.96 * fit.presence_se).mean()))
        inten.append(float((np.abs(fit.intensity_latent - sim.intensity_latent)
                            <= 1.96 * fit.intensity_latent_se).mean()))
    # 4 fits x 320 intervals each; nominal 0.95. Before the fix of #18 intensity averaged 0.914
    # over these fits (0.891-0.938); now 0.937 (0.919-0.962). Presence 0.955 -> 0.967.
    assert 0.925 <= float(np.mean(inten)) <= 0.98, inten
    assert 0.93 <= float(np.mean(pres)) <= 0.99, pres
    assert min(inten + pres) >= 0.9, (inten, pres)
    _sim, fit = same
    # Identical raters: the truth is 0 and every effect's interval should contain it nearly always.
    for est, se in ((fit.presence_shift, fit.presence_se), (fit.intensity_latent, fit.intensity_latent_se)):
        assert float((np.abs(est) <= 1.96 * se).mean()) >= 0.95


def test_the_pooling_sd_is_estimated_without_bias(more_seeds):
    """tau (sd of a rater's per-emotion effects around the rater's mean) drives the shrinkage and so
    the intervals; it came out about 12% low for intensity before #18 (ratio 0.87-0.90 here)."""
    ratio_s, ratio_d = [], []
    for sim, fit in more_seeds:
        ratio_s.append(fit.effect_sd["tau_s"] / _true_tau(sim.presence_shift))
        ratio_d.append(fit.effect_sd["tau_d"] / _true_tau(sim.intensity_latent))
    # Stated tolerance: mean ratio estimate / truth in 0.93-1.1 for presence (measured 1.00) and
    # 0.95-1.15 for intensity (measured 1.08: the probit approximation errs on the wide side).
    assert 0.93 <= float(np.mean(ratio_s)) <= 1.1, ratio_s
    assert 0.95 <= float(np.mean(ratio_d)) <= 1.15, ratio_d
    assert set(more_seeds[0][1].effect_sd) == {"tau_s", "omega_s", "tau_d", "omega_d"}


def test_intensity_shift_in_steps_follows_the_latent_shift(differ):
    _sim, fit, _t = differ
    steps, lat = fit.intensity_shift, fit.intensity_latent
    assert np.all(np.sign(steps[np.abs(lat) > 0.05]) == np.sign(lat[np.abs(lat) > 0.05]))
    lo, hi = fit.intensity_ci[..., 0], fit.intensity_ci[..., 1]
    assert np.all(lo <= steps) and np.all(steps <= hi)


def test_soft_labels_beat_the_median_when_raters_differ(differ):
    sim, fit, _t = differ
    med, mean = _median_and_mean(sim)
    truth = sim.expected_rating
    assert _rmse(fit.expected_rating, truth) < 0.75 * _rmse(med, truth)
    assert _rmse(fit.expected_rating, truth) < _rmse(mean, truth)
    assert _spearman_mean(fit.expected_rating, truth) > _spearman_mean(med, truth) + 0.05


def test_soft_labels_are_no_worse_when_raters_do_not_differ(same):
    sim, fit = same
    med, mean = _median_and_mean(sim)
    truth = sim.expected_rating
    assert _rmse(fit.expected_rating, truth) <= _rmse(med, truth)
    assert _rmse(fit.expected_rating, truth) <= _rmse(mean, truth)
    # Identical raters: every effect's interval should contain 0 nearly always.
    assert float((np.abs(fit.presence_shift) <= 1.96 * fit.presence_se).mean()) > 0.9


def test_soft_label_sd_is_calibrated(differ):
    sim, fit, _t = differ
    z = (sim.expected_rating - fit.expected_rating) / np.maximum(fit.sd, 1e-9)
    assert 0.92 <= float((np.abs(z) <= 1.96).mean()) <= 0.98
    assert np.all((fit.p_present >= 0) & (fit.p_present <= 1))
    assert np.all((fit.expected_intensity >= 1) & (fit.expected_intensity <= 7))


def test_non_convergence_is_reported():
    sim = rm.simulate_ratings(np.random.default_rng(3), n_images=300, ratings_per_image=3, n_raters=5, n_emotions=4)
    fit = rm.fit_rater_model(sim.units, sim.raters, sim.values, scale_max=7,
                             config=rm.RaterModelConfig(max_iter=2))
    assert not fit.converged
    assert any("did not converge" in w for w in fit.warnings)


def test_raters_with_few_ratings_are_held_at_the_panel_and_named():
    sim = rm.simulate_ratings(np.random.default_rng(4), n_images=400, ratings_per_image=3, n_raters=5, n_emotions=4)
    units = np.r_[sim.units, [0, 1, 2]]
    raters = np.r_[sim.raters, [99, 99, 99]]
    values = np.r_[sim.values, np.full((3, 4), 7.0)]
    fit = rm.fit_rater_model(units, raters, values, scale_max=7)
    newcomer = int(np.flatnonzero(fit.rater_ids == 99)[0])
    assert fit.few_ratings[newcomer]
    assert np.isnan(fit.presence_shift[newcomer]).all() and np.isnan(fit.presence_se[newcomer]).all()
    assert any("fewer than 20 ratings" in w for w in fit.warnings)


def test_disconnected_panels_are_reported():
    sim = rm.simulate_ratings(np.random.default_rng(5), n_images=200, ratings_per_image=2, n_raters=2, n_emotions=3)
    units = np.r_[sim.units, sim.units + 1000]
    raters = np.r_[sim.raters, sim.raters + 10]
    values = np.r_[sim.values, sim.values]
    fit = rm.fit_rater_model(units, raters, values, scale_max=7)
    assert any("2 groups that share no image" in w for w in fit.warnings)


def test_missing_values_are_allowed():
    sim = rm.simulate_ratings(np.random.default_rng(6), n_images=300, ratings_per_image=3, n_raters=5, n_emotions=4)
    values = sim.values.copy()
    values[::7, 1] = np.nan
    fit = rm.fit_rater_model(sim.units, sim.raters, values, scale_max=7)
    assert fit.converged
    assert fit.n_ratings[:, 1].sum() == np.isfinite(values[:, 1]).sum()


@pytest.mark.parametrize(("values", "message"), [
    ([[8.0]], r"values2d\[0, 0\] = 8.0: ratings must be whole numbers in 0..7"),
    ([[2.5]], r"values2d\[0, 0\] = 2.5"),
    ([[-1.0]], r"values2d\[0, 0\] = -1.0"),
])
def test_bad_values_are_refused_with_their_position(values, message):
    with pytest.raises(ValueError, match=message):
        rm.fit_rater_model([1], [1], values, scale_max=7)


def test_duplicate_and_shape_errors():
    with pytest.raises(ValueError, match="image 1 rated twice by rater 2"):
        rm.fit_rater_model([1, 1], [2, 2], [[1.0], [0.0]], scale_max=7)
    with pytest.raises(ValueError, match="one entry per row"):
        rm.fit_rater_model([1, 2], [2], [[1.0], [0.0]], scale_max=7)
    with pytest.raises(ValueError, match="no ratings"):
        rm.fit_rater_model([], [], np.zeros((0, 3)), scale_max=7)


def test_binary_scale_fits_presence_only():
    sim = rm.simulate_ratings(np.random.default_rng(9), n_images=600, ratings_per_image=3, n_raters=6, n_emotions=5)
    values = (sim.values > 0).astype(float)
    fit = rm.fit_rater_model(sim.units, sim.raters, values, scale_max=1)
    assert fit.converged
    assert np.all(fit.expected_intensity == 1.0)
    assert np.abs(fit.presence_shift - sim.presence_shift).mean() < 0.25


# -- Dawid-Skene (binary mode) ----------------------------------------------------------------


def _escalation_votes(rng: np.random.Generator, n_items: int, sens: np.ndarray, spec: np.ndarray,
                      prevalence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """EmoNet-Face's binary protocol: a first rater votes; another is added only while every vote
    so far is yes, up to three. Returns items, raters, votes and the true classes."""
    truth = rng.random(n_items) < prevalence
    items, raters, votes = [], [], []
    for i in range(n_items):
        panel = rng.choice(sens.size, 3, replace=False)
        for r in panel:
            p_yes = sens[r] if truth[i] else 1 - spec[r]
            v = int(rng.random() < p_yes)
            items.append(i)
            raters.append(int(r))
            votes.append(v)
            if v == 0:
                break
    return np.array(items), np.array(raters), np.array(votes), truth


def test_dawid_skene_recovers_sensitivities_under_the_escalation_design():
    rng = np.random.default_rng(11)
    sens = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.9])
    spec = np.array([0.9, 0.85, 0.95, 0.8, 0.9, 0.85, 0.75])
    items, raters, votes, truth = _escalation_votes(rng, 6000, sens, spec, prevalence=0.35)
    fit = rm.dawid_skene(items, raters, votes)
    assert fit.converged
    assert np.abs(fit.sensitivity - sens).max() < 0.06
    assert np.abs(fit.specificity - spec).max() < 0.06
    assert abs(float(fit.prevalence[0]) - 0.35) < 0.04
    assert "conditional (escalation) design" in fit.note
    inside = (fit.sensitivity_ci[:, 0] <= sens) & (sens <= fit.sensitivity_ci[:, 1])
    assert inside.sum() >= 5
    # The posterior beats the 3-of-3 rule at recovering the true class.
    n_yes = np.bincount(items, votes)
    n_votes = np.bincount(items)
    three_of_three = (n_yes == 3) & (n_votes == 3)
    assert float(((fit.p_present > 0.5) == truth).mean()) > float((three_of_three == truth).mean())


def _escalation_votes_fast(rng: np.random.Generator, n_items: int, sens: np.ndarray, spec: np.ndarray,
                           prevalence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same protocol as _escalation_votes, vectorised over items (one round of votes at a time)."""
    truth = rng.random(n_items) < prevalence
    panels = np.argsort(rng.random((n_items, sens.size)), axis=1)[:, :3]
    alive = np.ones(n_items, dtype=bool)
    items, raters, votes = [], [], []
    for k in range(3):
        r = panels[:, k]
        yes = rng.random(n_items) < np.where(truth, sens[r], 1 - spec[r])
        idx = np.flatnonzero(alive)
        items.append(idx)
        raters.append(r[idx])
        votes.append(yes[idx].astype(int))
        alive &= yes
    return np.concatenate(items), np.concatenate(raters), np.concatenate(votes)


def test_dawid_skene_intervals_cover_close_to_nominal():
    """100 simulated panels x 7 raters x (sensitivity, specificity) = 1,400 intervals. The
    expected-count Wilson intervals used before covered 0.79 here (the items' unknown classes
    ignored); the observed-information intervals 0.94."""
    sens = np.array([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.9])
    spec = np.array([0.9, 0.85, 0.95, 0.8, 0.9, 0.85, 0.75])
    covered = []
    for seed in range(100):
        items, raters, votes = _escalation_votes_fast(np.random.default_rng(500 + seed), 1500, sens, spec, 0.35)
        fit = rm.dawid_skene(items, raters, votes)
        covered.append((fit.sensitivity_ci[:, 0] <= sens) & (sens <= fit.sensitivity_ci[:, 1]))
        covered.append((fit.specificity_ci[:, 0] <= spec) & (spec <= fit.specificity_ci[:, 1]))
    rate = float(np.mean(covered))
    assert 0.92 <= rate <= 0.985, rate


def test_dawid_skene_refuses_bad_votes():
    with pytest.raises(ValueError, match=r"votes\[1\] = 2.0: votes must be 0 \(no\) or 1 \(yes\)"):
        rm.dawid_skene([1, 2], [1, 1], [1, 2])
