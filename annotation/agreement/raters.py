"""The "could be an annotator" test and Spearman against the expert median (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt

from .constants import FloatArray, Id, IntArray
from .prepare import _as_1d, _as_values2d, _factorize
from .results import AnnotatorTest, PairKappa, SpearmanResult


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
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up
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
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up
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
