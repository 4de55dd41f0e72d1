"""How a model agrees with the experts, per emotion. PURE: numpy + annotation.agreement.

As in the EmoNet-Face paper: the model enters the kappa table as one more rater (its scores
mapped onto the project scale and rounded to the nearest scale point), then per emotion

- ``model_kappa``: mean quadratic-weighted Cohen's kappa between the model and each expert,
- ``human_kappa``: mean kappa between the experts,
- the "could be an annotator" test: two-sided Mann-Whitney U of model-expert kappas against
  expert-expert kappas (``annotation.agreement.candidate_test``); p > 0.05 = no detectable
  difference, "could be an annotator",
- Spearman rho between the raw model score and the per-image median expert rating
  (``annotation.agreement.spearman_vs_median``; rank-based, so the scale mapping does not matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from annotation import agreement as ag
from annotation.agreement.alttest import leave_one_out_squares

MODEL_RATER_ID = -1  # below every real user id


@dataclass(frozen=True)
class ModelEmotionAgreement:
    emotion: int
    n_images: int  # images with a model score and at least one expert rating
    model_kappa: float | None
    human_kappa: float | None
    annotator_p: float | None
    could_be_annotator: bool | None
    verdict: str
    spearman_rho: float | None
    spearman_p: float | None
    spearman_reason: str | None


def to_scale(scores: npt.ArrayLike, *, scale_max: int, model_scale_max: float) -> npt.NDArray[np.int16]:
    """Model scores -> the nearest point of the project scale 0..scale_max."""
    x = np.asarray(scores, dtype=np.float64) * (scale_max / model_scale_max)
    return np.clip(np.rint(x), 0, scale_max).astype(np.int16)


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def model_vs_humans(units: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike,
                    model_units: npt.ArrayLike, model_scores: npt.ArrayLike, *, scale_max: int,
                    model_scale_max: float = 7.0) -> list[ModelEmotionAgreement]:
    """Per emotion (one entry per column of `values`): see the module docstring.

    units/raters/values: the experts' long table (one row per rating); model_units/model_scores:
    one row per scored image. Images the experts did not rate are ignored.
    """
    u = np.asarray(units, dtype=np.int64)
    r = np.asarray(raters, dtype=np.int64)
    x = np.asarray(values).reshape(u.size, -1)
    n_e = x.shape[1]
    mu = np.asarray(model_units, dtype=np.int64)
    ms = np.asarray(model_scores, dtype=np.float64).reshape(mu.size, n_e)
    if np.any(r == MODEL_RATER_ID):
        raise ValueError(f"rater id {MODEL_RATER_ID} is reserved for the model")
    rated = np.isin(mu, u)
    mu_r, ms_r = mu[rated], ms[rated]
    if u.size and mu_r.size:
        all_units = np.concatenate([u, mu_r])
        all_raters = np.concatenate([r, np.full(mu_r.size, MODEL_RATER_ID, dtype=np.int64)])
        all_values = np.concatenate([x.astype(np.int16), to_scale(ms_r, scale_max=scale_max,
                                                                  model_scale_max=model_scale_max)])
        kappas = ag.pairwise_kappas(all_units, all_raters, all_values, domain=ag.scale_domain(scale_max))
    else:
        kappas = []
    rhos = ag.spearman_vs_median(u, x, mu, ms) if u.size else []
    humans = {int(v) for v in np.unique(r).tolist()}
    out: list[ModelEmotionAgreement] = []
    for e in range(n_e):
        model_k = [k.kappa for k in kappas if k.emotion == e and k.kappa is not None
                   and MODEL_RATER_ID in (k.rater_a, k.rater_b)]
        human_k = [k.kappa for k in kappas if k.emotion == e and k.kappa is not None
                   and MODEL_RATER_ID not in (k.rater_a, k.rater_b)]
        test = ag.candidate_test(kappas, MODEL_RATER_ID, humans=humans, emotion=e)
        rho = rhos[e] if rhos else None
        out.append(ModelEmotionAgreement(
            emotion=e, n_images=int(rated.sum()), model_kappa=_mean(model_k), human_kappa=_mean(human_k),
            annotator_p=test.p_value, could_be_annotator=test.could_be_annotator, verdict=test.verdict,
            spearman_rho=rho.rho if rho else None, spearman_p=rho.p_value if rho else None,
            spearman_reason=rho.reason if rho else "no expert ratings"))
    return out


@dataclass(frozen=True)
class ModelEvaluation:
    """A model against the experts as a whole (docs/agreement.md, "Models"):

    - ``alignment``: the effect size, how much closer the model is to the remaining experts than a
      held-out expert is, with an interval that resamples images and experts
      (``alignment_difference``);
    - ``split_half``: how well two disjoint expert panels agree (``split_half_agreement``), beside
      the noise ceiling;

    - ``alt_test`` (pooled over emotions) and ``alt_test_per_emotion``: the alternative annotator
      test (annotation.agreement.alttest), the model's scores rounded to the project scale, as it
      enters the kappa table;
    - ``spearman_mean``: mean over emotions of Spearman rho between the raw score and the expert
      median, on the ``evaluated_images`` (a model score and at least two expert ratings);
    - ``spearman_ceiling``: mean over the same emotions of the rho a perfect model could reach,
      sqrt(Spearman-Brown reliability of the median of k ratings), with the emotion's alpha on
      those images as one rating's reliability (negative alpha counts as 0).
    """

    evaluated_images: int
    ratings_per_image: float | None
    alt_test: ag.AltTestResult
    alt_test_per_emotion: list[ag.AltTestResult]
    spearman_mean: float | None
    spearman_ceiling: float | None
    spearman_emotions: int
    alignment: AlignmentDifference | None = None
    split_half: SplitHalf | None = None


def model_evaluation(units: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike,
                     model_units: npt.ArrayLike, model_scores: npt.ArrayLike, *, scale_max: int,
                     model_scale_max: float = 7.0, epsilon: float = ag.EPSILON_EXPERTS,
                     min_images: int = ag.ALT_TEST_MIN_IMAGES,
                     images: npt.ArrayLike | None = None, n_boot: int = 1000, seed: int = 0) -> ModelEvaluation:
    """See ``ModelEvaluation``. Only images with a model score and two or more expert ratings count,
    and, when ``images`` is given (the model-independent evaluation sample), only those. ``n_boot``
    image resamples (seeded) for the alignment difference's interval; 0 = no interval."""
    u = np.asarray(units, dtype=np.int64)
    r = np.asarray(raters, dtype=np.int64)
    x = np.asarray(values, dtype=np.float64).reshape(u.size, -1)
    n_e = x.shape[1]
    mu = np.asarray(model_units, dtype=np.int64)
    ms = np.asarray(model_scores, dtype=np.float64).reshape(mu.size, n_e)
    ids, counts = np.unique(u, return_counts=True)
    keep_img = ids[counts >= 2]
    if images is not None:
        keep_img = keep_img[np.isin(keep_img, np.asarray(images, dtype=np.int64))]
    in_model = np.isin(keep_img, mu)
    evaluated = keep_img[in_model]
    rows = np.isin(u, evaluated)
    ue, re_, xe = u[rows], r[rows], x[rows]
    scored = np.isin(mu, evaluated)
    mu_e, ms_e = mu[scored], ms[scored]
    rounded = to_scale(ms_e, scale_max=scale_max, model_scale_max=model_scale_max).astype(np.float64)
    pooled, per = ag.alt_test(ue, re_, xe, mu_e, rounded, epsilon=epsilon, min_images=min_images)
    rhos = ag.spearman_vs_median(ue, xe, mu_e, ms_e) if ue.size else []
    k = float(ue.size / evaluated.size) if evaluated.size else None
    alphas = ag.alpha_all(ue, None, xe, domain=ag.scale_domain(scale_max)) if ue.size else []
    used_rho: list[float] = []
    ceilings: list[float] = []
    for e, rho in enumerate(rhos):
        a = alphas[e].alpha
        if rho.rho is None or a is None or k is None:
            continue
        rel = ag.spearman_brown(max(a, 0.0), k)
        used_rho.append(rho.rho)
        ceilings.append(float(np.sqrt(rel)) if rel is not None else 0.0)
    return ModelEvaluation(
        evaluated_images=int(evaluated.size), ratings_per_image=k, alt_test=pooled, alt_test_per_emotion=per,
        spearman_mean=float(np.mean(used_rho)) if used_rho else None,
        spearman_ceiling=float(np.mean(ceilings)) if ceilings else None, spearman_emotions=len(used_rho),
        alignment=alignment_difference(ue, re_, xe, mu_e, rounded, n_boot=n_boot, seed=seed),
        split_half=split_half_agreement(ue, xe, seed=seed))


REASON_NO_PAIRS = "no image with the model, a held-out expert and at least one other expert"


@dataclass(frozen=True)
class AlignmentDifference:
    """The model's alignment with the remaining experts minus a held-out expert's, in scale points.

    Per rating of image i by expert j (with at least one other expert on i and a model score):
    d = RMSE(expert j, the others) - RMSE(model, the others), the root mean squared difference over
    the emotions and the other experts' ratings of i. ``estimate`` is the mean of d over these
    pairs: positive = the model is closer to the experts than one more expert is, 0 = as close,
    negative = further (in rating points). ``low``/``high``: the 95% interval for experts like
    these (image bootstrap widened by the delete-one-expert jackknife, as for alpha:
    annotation.agreement.two_way_intervals); ``image_low``/``image_high``: images resampled only.
    """

    estimate: float | None
    low: float | None
    high: float | None
    image_low: float | None
    image_high: float | None
    n_pairs: int
    n_experts: int
    n_boot: int
    n_undefined: int
    reason: str | None


def _table(values: npt.ArrayLike, n_rows: int) -> npt.NDArray[np.float64]:
    """The values as an (n_rows, emotions) float table (a 2-D input keeps its width even when empty)."""
    x = np.asarray(values, dtype=np.float64)
    return x if x.ndim == 2 else x.reshape(n_rows, -1)


def _alignment_sums(unit_idx: npt.NDArray[np.intp], n_u: int, x: npt.NDArray[np.float64],
                    cand: npt.NDArray[np.float64], keep: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.float64],
                                                                                       npt.NDArray[np.float64]]:
    """Per image, the sum of d over its usable ratings and their number (``keep``: the rows that
    count, as held-out expert and as the others)."""
    lo = leave_one_out_squares(unit_idx, n_u, x, cand, keep)
    sq_c, sq_h = lo.sq_cand.sum(axis=1), lo.sq_held.sum(axis=1)
    cells = np.where(lo.valid, lo.m_others, 0.0).sum(axis=1)
    ok = cells > 0
    d = np.zeros(unit_idx.size)
    d[ok] = np.sqrt(np.maximum(sq_h[ok], 0.0) / cells[ok]) - np.sqrt(np.maximum(sq_c[ok], 0.0) / cells[ok])
    sums = np.bincount(unit_idx[ok], weights=d[ok], minlength=n_u).astype(np.float64)
    counts = np.bincount(unit_idx[ok], minlength=n_u).astype(np.float64)
    return sums, counts


def alignment_difference(units: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike,
                         model_units: npt.ArrayLike, model_values: npt.ArrayLike, *, n_boot: int = 1000,
                         seed: int = 0, confidence: float = 0.95) -> AlignmentDifference:
    """See ``AlignmentDifference``. ``model_values``: one row per image, on the experts' scale
    (the rounded scores, as in the alt-test); images without a model row are left out."""
    u = np.asarray(units, dtype=np.int64)
    r = np.asarray(raters, dtype=np.int64)
    x = _table(values, u.size)
    mu = np.asarray(model_units, dtype=np.int64)
    mv = np.asarray(model_values, dtype=np.float64).reshape(mu.size, x.shape[1])
    unit_ids, unit_idx = np.unique(u, return_inverse=True)
    rater_ids, rater_idx = np.unique(r, return_inverse=True)
    n_u = int(unit_ids.size)
    cand_u = np.full((n_u, x.shape[1]), np.nan)
    pos = np.searchsorted(unit_ids, mu)
    ok = pos < n_u
    ok[ok] = unit_ids[pos[ok]] == mu[ok]
    cand_u[pos[ok]] = mv[ok]
    cand = cand_u[unit_idx]
    everyone = np.ones(u.size, dtype=bool)
    sums, counts = _alignment_sums(unit_idx, n_u, x, cand, everyone)
    n_pairs = int(counts.sum())
    if n_pairs == 0:
        return AlignmentDifference(None, None, None, None, None, 0, int(rater_ids.size), n_boot, 0, REASON_NO_PAIRS)
    point = float(sums.sum() / n_pairs)
    if n_boot <= 0:
        return AlignmentDifference(point, None, None, None, None, n_pairs, int(rater_ids.size), 0, 0,
                                   "no interval: bootstrap resamples set to 0")
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    chunk = max(1, min(n_boot, 2_000_000 // max(n_u, 1)))  # resamples drawn at once (about 16 MB of indices)
    for b0 in range(0, n_boot, chunk):
        nb = min(chunk, n_boot - b0)
        idx = rng.integers(0, n_u, (nb, n_u))
        c = counts[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[b0:b0 + nb] = np.where(c > 0, sums[idx].sum(axis=1) / c, np.nan)
    # Without expert j only the images j rated change: recompute those, keep the others' sums.
    loo = np.full(int(rater_ids.size), np.nan)
    total_s, total_c = float(sums.sum()), float(counts.sum())
    for j in range(int(rater_ids.size)):
        imgs = np.unique(unit_idx[rater_idx == j])
        rows = np.isin(unit_idx, imgs)
        sub = np.searchsorted(imgs, unit_idx[rows])
        s_j, c_j = _alignment_sums(sub, int(imgs.size), x[rows], cand[rows], rater_idx[rows] != j)
        c = total_c - float(counts[imgs].sum()) + float(c_j.sum())
        if c > 0:
            loo[j] = (total_s - float(sums[imgs].sum()) + float(s_j.sum())) / c
    image, both = ag.two_way_intervals([point], reps[:, None], loo[:, None], confidence)
    return AlignmentDifference(point, both[0].low, both[0].high, image[0].low, image[0].high, n_pairs,
                               int(rater_ids.size), n_boot, image[0].n_undefined, both[0].reason)


@dataclass(frozen=True)
class SplitHalf:
    """Agreement of two disjoint expert panels: per image with two or more ratings, its ratings in
    a seeded random order are cut into two halves of floor(k/2) ratings (an odd one out is left
    out); per emotion, Spearman rho between the two halves' medians over the images; ``rho`` is
    the mean over the emotions where it is defined. ``ratings_per_half`` is the mean half size.
    What a second panel of experts of that size reaches, to read beside the noise ceiling (which
    is for the median of all the ratings)."""

    rho: float | None
    ratings_per_half: float | None
    n_images: int
    emotions: int


def split_half_agreement(units: npt.ArrayLike, values: npt.ArrayLike, *, seed: int = 0) -> SplitHalf:
    """See ``SplitHalf``."""
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up

    u = np.asarray(units, dtype=np.int64)
    if u.size == 0:
        return SplitHalf(None, None, 0, 0)
    x = _table(values, u.size)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(u.size), u))
    us, xs = u[order], x[order]
    ids, start, k = np.unique(us, return_index=True, return_counts=True)
    rank = np.arange(us.size) - np.repeat(start, k)
    half = np.repeat(k // 2, k)
    a_parts: list[npt.NDArray[np.float64]] = []
    b_parts: list[npt.NDArray[np.float64]] = []
    sizes: list[int] = []
    for h in np.unique(k // 2):
        if h < 1:
            continue
        imgs = np.flatnonzero(k // 2 == h)
        rows_a = (np.repeat(np.isin(np.arange(ids.size), imgs), k)) & (rank < half)
        rows_b = (np.repeat(np.isin(np.arange(ids.size), imgs), k)) & (rank >= half) & (rank < 2 * half)
        a_parts.append(np.median(xs[rows_a].reshape(imgs.size, int(h), -1), axis=1))
        b_parts.append(np.median(xs[rows_b].reshape(imgs.size, int(h), -1), axis=1))
        sizes += [int(h)] * int(imgs.size)
    if not sizes or len(sizes) < 3:
        return SplitHalf(None, None, len(sizes), 0)
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    rhos = []
    for e in range(a.shape[1]):
        ae, be = a[:, e], b[:, e]
        ok = ~np.isnan(ae) & ~np.isnan(be)
        if ok.sum() < 3 or np.ptp(ae[ok]) == 0 or np.ptp(be[ok]) == 0:
            continue
        rhos.append(float(np.corrcoef(stats.rankdata(ae[ok]), stats.rankdata(be[ok]))[0, 1]))
    return SplitHalf(float(np.mean(rhos)) if rhos else None, float(np.mean(sizes)), len(sizes), len(rhos))
