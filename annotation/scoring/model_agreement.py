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


def model_evaluation(units: npt.ArrayLike, raters: npt.ArrayLike, values: npt.ArrayLike,
                     model_units: npt.ArrayLike, model_scores: npt.ArrayLike, *, scale_max: int,
                     model_scale_max: float = 7.0, epsilon: float = ag.EPSILON_EXPERTS,
                     min_images: int = ag.ALT_TEST_MIN_IMAGES,
                     images: npt.ArrayLike | None = None) -> ModelEvaluation:
    """See ``ModelEvaluation``. Only images with a model score and two or more expert ratings count,
    and, when ``images`` is given (the model-independent evaluation sample), only those."""
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
        spearman_ceiling=float(np.mean(ceilings)) if ceilings else None, spearman_emotions=len(used_rho))
