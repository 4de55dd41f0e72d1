"""The alternative annotator test (Calderon, Reichart & Dror 2025) and the model evaluation built on
it, checked by simulation with known truth (issue #17). Pure: no database; seeded and small."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from annotation import agreement as ag
from annotation.agreement.alttest import _one_sided_p
from annotation.scoring.model_agreement import model_evaluation


def _observe(rng: np.random.Generator, z: np.ndarray, sd: float) -> np.ndarray:
    y = z + sd * rng.standard_normal(z.shape)
    return np.where(y < 0.5, 0.0, np.clip(np.rint(y), 1, 7))


def panel(rng: np.random.Generator, n_images: int, cand_sd: float | None, *, n_raters: int = 8, per: int = 4,
          n_em: int = 10, expert_sd: float = 1.5):
    """Experts: latent + N(0, expert_sd), present above 0.5, 0..7. The candidate rates every image:
    another expert with noise ``cand_sd``, or (None) the experts' consensus (the latent, rounded)."""
    units = np.repeat(np.arange(n_images), per)
    raters = rng.random((n_images, n_raters)).argsort(axis=1)[:, :per].reshape(-1)
    z = rng.normal(-1.0, 2.0, (n_images, n_em))
    values = _observe(rng, z[units], expert_sd)
    cand = np.where(z < 0.5, 0.0, np.clip(np.rint(z), 1, 7)) if cand_sd is None else _observe(rng, z, cand_sd)
    return units, raters, values, np.arange(n_images), cand


def _pass_rate(cand_sd: float | None, n_rep: int, seed: int, n_images: int = 600) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    passed, adv, per_em = [], [], []
    for _ in range(n_rep):
        pooled, per = ag.alt_test(*panel(rng, n_images, cand_sd))
        assert pooled.passed is not None and pooled.n_experts == 8
        passed.append(pooled.passed)
        adv.append(pooled.advantage_probability)
        per_em.append(np.mean([p.passed for p in per if p.passed is not None]))
    return float(np.mean(passed)), float(np.mean(adv)), float(np.mean(per_em))


def test_a_genuine_expert_passes_and_a_noisier_one_is_rejected() -> None:
    genuine, adv_g, per_g = _pass_rate(1.5, n_rep=30, seed=1)
    assert genuine >= 0.9  # as good as the experts: passes (the design's power at ~300 images per expert)
    assert 0.45 <= adv_g <= 0.6  # and wins about half of the comparisons (ties count for both)
    assert per_g >= 0.9
    noisy, adv_n, per_n = _pass_rate(2.25, n_rep=30, seed=2)  # 1.5 x the experts' noise
    assert noisy <= 0.1 and adv_n < 0.4
    assert per_n <= 0.1  # per emotion too: all-zero ties are left out, so they do not hide the noise


def test_a_consensus_like_candidate_passes_unlike_the_two_sided_test() -> None:
    # better than any single expert (it follows their consensus): the one-sided alt-test passes it
    rate, adv, _ = _pass_rate(None, n_rep=10, seed=3, n_images=300)
    assert rate == 1.0 and adv > 0.8


def test_the_per_expert_test_rejects_as_often_as_its_level_at_the_margin() -> None:
    # d = W_expert - W_candidate in {-1, 0, 1} with mean exactly epsilon: H0 holds (at its
    # boundary), so a one-sided test at 0.05 rejects about 5% of the time.
    rng = np.random.default_rng(4)
    eps, n = 0.2, 200
    probs = np.array([0.3, 0.2, 0.5])  # P(d = -1), P(d = 0), P(d = +1): mean 0.2
    d = rng.choice([-1.0, 0.0, 1.0], size=(4000, n), p=probs)
    p = _one_sided_p(np.full(4000, float(n)), d.sum(axis=1), (d * d).sum(axis=1), eps)
    assert 0.035 <= float(np.mean(p <= 0.05)) <= 0.065
    # and equals scipy's one-sample t-test
    want = stats.ttest_1samp(d[:5], eps, axis=1, alternative="less").pvalue
    assert p[:5] == pytest.approx(want, abs=1e-12)


def test_benjamini_yekutieli_and_the_winning_rate_by_hand() -> None:
    # 3 experts; the candidate copies expert 0 on every image and is pure noise elsewhere.
    rng = np.random.default_rng(5)
    units, raters, values, cu, _ = panel(rng, 200, 1.5, n_raters=3, per=3, n_em=4)
    pooled, _ = ag.alt_test(units, raters, values, cu, values[raters == 0][np.argsort(units[raters == 0])])
    by = {x.rater: x for x in pooled.experts}
    adj = stats.false_discovery_control([x.p_value for x in pooled.experts], method="by")
    assert [x.rejected for x in pooled.experts] == list(adj <= 0.05)
    assert pooled.winning_rate == pytest.approx(np.mean(adj <= 0.05))
    assert by[0].rho_candidate == 1.0 and by[0].rho_expert == 1.0  # identical to the held-out expert: ties
    assert pooled.passed == (pooled.winning_rate >= 0.5)


def test_too_few_experts_gives_no_verdict() -> None:
    rng = np.random.default_rng(6)
    units, raters, values, cu, cand = panel(rng, 100, 1.5, n_raters=2, per=2, n_em=3)
    pooled, per = ag.alt_test(units, raters, values, cu, cand)
    assert pooled.passed is None and pooled.winning_rate is None and "at least 3 experts" in (pooled.reason or "")
    assert all(p.passed is None for p in per)


def test_model_evaluation_noise_ceiling_matches_a_perfect_model() -> None:
    # A model that outputs the latent intensity itself is the best possible: its mean Spearman rho
    # with the expert median should sit at the noise ceiling, and a noisy model well below it.
    rng = np.random.default_rng(7)
    n, n_em = 1500, 6
    units = np.repeat(np.arange(n), 4)
    raters = rng.random((n, 8)).argsort(axis=1)[:, :4].reshape(-1)
    z = rng.normal(2.0, 1.5, (n, n_em))  # mostly present: the ceiling's linear reasoning applies
    values = np.clip(np.rint(z[units] + 1.5 * rng.standard_normal((units.size, n_em))), 0, 7)
    perfect = model_evaluation(units, raters, values, np.arange(n), np.clip(z, 0, 7), scale_max=7)
    assert perfect.evaluated_images == n and perfect.ratings_per_image == 4.0
    assert perfect.spearman_ceiling is not None and perfect.spearman_mean is not None
    assert abs(perfect.spearman_mean - perfect.spearman_ceiling) < 0.05
    noisy = model_evaluation(units, raters, values, np.arange(n), np.clip(z + 2 * rng.standard_normal(z.shape), 0, 7),
                             scale_max=7)
    assert noisy.spearman_mean is not None and noisy.spearman_mean < perfect.spearman_ceiling - 0.1
    assert perfect.alt_test.passed is True and noisy.alt_test.passed is False
    # images with a single expert rating are not evaluated
    one = model_evaluation(units[::4], raters[::4], values[::4], np.arange(n), z, scale_max=7)
    assert one.evaluated_images == 0 and one.spearman_mean is None and one.alt_test.passed is None
