"""The alternative annotator test (part of annotation.agreement; contracts in its docstring).

Calderon, Reichart & Dror (ACL 2025), "The Alternative Annotator Test for LLM-as-a-Judge: How to
Statistically Justify Replacing Human Annotators with LLMs". A candidate (a model, or a rater
under scrutiny) is compared with each expert in turn, on the images both rated, by how well each
aligns with the *remaining* experts:

- alignment of an annotation with the remaining experts on an image: minus the root mean squared
  difference to their ratings (their "-RMSE"; over the 40 emotions at once when pooled);
- per image, the candidate "wins" when its alignment is at least the held-out expert's, and the
  expert wins when its alignment is at least the candidate's (a tie counts for both);
- per expert j, a one-sided paired t-test of H0: rho_expert - rho_candidate >= epsilon against
  H1: rho_expert - rho_candidate < epsilon (rho = share of images won), so the candidate may be
  worse than the expert by less than the cost-benefit margin epsilon;
- the p-values over experts are corrected with Benjamini-Yekutieli at level q; the winning rate is
  the share of experts whose H0 was rejected, and the candidate passes when it is at least 0.5;
- the advantage probability is the mean over experts of rho_candidate.

The test is one-sided: a candidate better than the experts (one that follows their consensus)
passes, unlike the two-sided Mann-Whitney "could be an annotator" test it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .constants import FloatArray, Id
from .prepare import _as_1d, _as_values2d, _factorize

# Calderon et al. recommend epsilon = 0.2 when the humans are experts (0.1 for crowd workers).
EPSILON_EXPERTS = 0.2
MIN_EXPERTS = 3
MIN_IMAGES = 30


@dataclass(frozen=True)
class AltTestExpert:
    """The candidate against one held-out expert."""

    rater: Id
    n_images: int
    rho_candidate: float  # share of images where the candidate aligns at least as well
    rho_expert: float  # share of images where the expert aligns at least as well
    p_value: float  # one-sided paired t-test, before the correction
    rejected: bool  # H0 rejected after Benjamini-Yekutieli: the candidate wins against this expert


@dataclass(frozen=True)
class AltTestResult:
    """One alt-test: per emotion (``emotion`` its index) or pooled over emotions (``emotion=None``).

    ``winning_rate``, ``advantage_probability`` and ``passed`` are ``None`` with ``reason`` when
    fewer than ``MIN_EXPERTS`` experts share at least ``min_images`` images with the candidate.
    """

    emotion: int | None
    epsilon: float
    q: float
    n_experts: int
    winning_rate: float | None
    advantage_probability: float | None
    passed: bool | None
    reason: str | None
    experts: tuple[AltTestExpert, ...]


def _one_sided_p(n: npt.NDArray[np.float64], s1: FloatArray, s2: FloatArray, epsilon: float) -> FloatArray:
    """p of H0: mean(d) >= epsilon vs H1: mean(d) < epsilon from n, sum d, sum d^2 (paired t-test)."""
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / n
        var = np.maximum(s2 - n * mean * mean, 0.0) / (n - 1.0)
        t = (mean - epsilon) / np.sqrt(var / n)
        p = stats.t.cdf(t, n - 1.0)
    # no spread: the sign decides
    flat = ~(var > 1e-15)
    return np.where(flat, np.where(mean < epsilon, 0.0, 1.0), p)


def _decide(
    emotion: int | None,
    rater_ids: npt.NDArray[np.generic],
    n: FloatArray,
    s1: FloatArray,
    s2: FloatArray,
    won_c: FloatArray,
    won_h: FloatArray,
    *,
    epsilon: float,
    q: float,
    min_images: int,
) -> AltTestResult:
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]  # lazily: ~1 s of start-up
    tested = np.flatnonzero(n >= min_images)
    if tested.size < MIN_EXPERTS:
        return AltTestResult(emotion, epsilon, q, int(tested.size), None, None, None,
                             f"needs at least {MIN_EXPERTS} experts who each share {min_images} or more "
                             f"images with the candidate (have {tested.size})", ())
    p = _one_sided_p(n[tested], s1[tested], s2[tested], epsilon)
    adj = stats.false_discovery_control(p, method="by")
    rejected = adj <= q
    experts = tuple(
        AltTestExpert(rater_ids[j].item(), int(n[j]), float(won_c[j] / n[j]), float(won_h[j] / n[j]), float(pv),
                      bool(rj))
        for j, pv, rj in zip(tested.tolist(), p.tolist(), rejected.tolist(), strict=True)
    )
    rate = float(rejected.mean())
    adv = float(np.mean([x.rho_candidate for x in experts]))
    return AltTestResult(emotion, epsilon, q, int(tested.size), rate, adv, rate >= 0.5, None, experts)


@dataclass(frozen=True)
class LeaveOneOut:
    """Per rating row and emotion (cell), a held-out expert against the other experts of the image.

    ``valid``: the row's expert rated the cell, the candidate did, and at least one other expert
    did; ``m_others``/``s1_others``: how many other experts rated it and the sum of their values;
    ``sq_cand``/``sq_held``: sum over those others k of (candidate - x_k)^2 and (held-out - x_k)^2
    (0 outside ``valid``); ``held``/``cand``: the two values (0 outside ``valid`` for ``cand``)."""

    valid: npt.NDArray[np.bool_]
    m_others: FloatArray
    s1_others: FloatArray
    sq_cand: FloatArray
    sq_held: FloatArray
    held: FloatArray
    cand: FloatArray


def leave_one_out_squares(unit_idx: npt.NDArray[np.intp], n_u: int, x: FloatArray, cand: FloatArray,
                          keep: npt.NDArray[np.bool_]) -> LeaveOneOut:
    """``LeaveOneOut`` of every row (``x``: the experts' values, NaN = missing; ``cand``: the
    candidate's value for each row's image; ``keep``: rows that count, as held-out expert and as
    the others), from per-image sums: O(rows x emotions), one bincount per emotion and moment."""
    has = ~np.isnan(x) & keep[:, None]
    xv = np.where(has, x, 0.0)
    n_e = x.shape[1]
    m = np.zeros((n_u, n_e))
    t1 = np.zeros((n_u, n_e))
    t2 = np.zeros((n_u, n_e))
    for e in range(n_e):
        m[:, e] = np.bincount(unit_idx, weights=has[:, e], minlength=n_u)
        t1[:, e] = np.bincount(unit_idx, weights=xv[:, e], minlength=n_u)
        t2[:, e] = np.bincount(unit_idx, weights=xv[:, e] ** 2, minlength=n_u)
    # the image's sums without the row's own rating (leave one out)
    m_o = m[unit_idx] - has
    s1_o = t1[unit_idx] - xv
    s2_o = t2[unit_idx] - xv * xv
    valid = has & ~np.isnan(cand) & (m_o >= 1)
    cc = np.where(valid, cand, 0.0)
    # sum over the other experts k of (a - x_k)^2 = m a^2 - 2 a S1 + S2, per cell
    return LeaveOneOut(valid=valid, m_others=m_o, s1_others=s1_o,
                       sq_cand=np.where(valid, m_o * cc * cc - 2.0 * cc * s1_o + s2_o, 0.0),
                       sq_held=np.where(valid, m_o * xv * xv - 2.0 * xv * s1_o + s2_o, 0.0), held=xv, cand=cc)


def alt_test(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    values2d: npt.ArrayLike,
    candidate_units: npt.ArrayLike,
    candidate_values2d: npt.ArrayLike,
    *,
    epsilon: float = EPSILON_EXPERTS,
    q: float = 0.05,
    min_images: int = MIN_IMAGES,
) -> tuple[AltTestResult, list[AltTestResult]]:
    """(pooled over emotions, per emotion) alt-test of a candidate against the experts.

    ``units``/``raters``/``values2d``: the experts' long table (NaN = missing). The candidate
    gives one row per image (``candidate_units`` unique), on the same scale; images it did not
    annotate, and images with no other expert beside the held-out one, are left out of that
    expert's comparison. Pooled: an image's alignment uses all emotions at once (-RMSE over
    emotions and remaining experts), so each image is one paired observation.
    """
    u = _as_1d("units", units)
    r = _as_1d("raters", raters)
    x = _as_values2d(values2d, u.size)
    if r.size != u.size:
        raise ValueError(f"raters has {r.size} entries but units has {u.size}")
    cu = _as_1d("candidate_units", candidate_units)
    cv = _as_values2d(candidate_values2d, cu.size)
    if cv.shape[1] != x.shape[1]:
        raise ValueError(f"candidate_values2d has {cv.shape[1]} emotions, values2d has {x.shape[1]}")
    if np.unique(cu).size != cu.size:
        raise ValueError("candidate_units must not repeat an image")
    unit_idx, unit_ids = _factorize(u)
    rater_idx, rater_ids = _factorize(r)
    n_u, n_e, n_r = int(unit_ids.size), x.shape[1], int(rater_ids.size)
    # the candidate's annotation of each row's image (NaN where it has none)
    cand = np.full((n_u, n_e), np.nan)
    pos = np.searchsorted(unit_ids, cu)
    ok = pos < n_u
    ok[ok] = unit_ids[pos[ok]] == cu[ok]
    cand[pos[ok]] = cv[ok]
    lo = leave_one_out_squares(unit_idx, n_u, x, cand[unit_idx], np.ones(x.shape[0], dtype=bool))
    valid, sq_c, sq_h, s1_o, xv, cc = lo.valid, lo.sq_cand, lo.sq_held, lo.s1_others, lo.held, lo.cand
    # pooled: one comparison per row (expert x image), the same remaining cells on both sides
    row_ok = valid.any(axis=1)
    pc, ph = sq_c.sum(axis=1), sq_h.sum(axis=1)
    wc = (pc <= ph) & row_ok
    wh = (ph <= pc) & row_ok
    d = wh.astype(np.float64) - wc.astype(np.float64)
    ri = rater_idx[row_ok]

    def per_rater(w: npt.NDArray[np.float64], sel: npt.NDArray[np.intp]) -> FloatArray:
        return np.bincount(sel, weights=w, minlength=n_r).astype(np.float64)

    pooled = _decide(
        None, rater_ids,
        per_rater(np.ones(ri.size), ri), per_rater(d[row_ok], ri), per_rater(d[row_ok] ** 2, ri),
        per_rater(wc[row_ok].astype(np.float64), ri), per_rater(wh[row_ok].astype(np.float64), ri),
        epsilon=epsilon, q=q, min_images=min_images,
    )
    # Per emotion, an image where the held-out expert, the remaining experts and the candidate all
    # say 0 is a tie that tells nothing about who aligns better; under zero inflation such ties are
    # most images and would pull every difference towards 0, so they are left out.
    informative = valid & ((s1_o != 0) | (xv != 0) | (cc != 0))
    per_emotion: list[AltTestResult] = []
    for e in range(n_e):
        v = informative[:, e]
        sel = rater_idx[v]
        fc, fh = sq_c[v, e], sq_h[v, e]
        w_c = (fc <= fh).astype(np.float64)
        w_h = (fh <= fc).astype(np.float64)
        de = w_h - w_c
        per_emotion.append(_decide(
            e, rater_ids, per_rater(np.ones(sel.size), sel), per_rater(de, sel), per_rater(de * de, sel),
            per_rater(w_c, sel), per_rater(w_h, sel), epsilon=epsilon, q=q, min_images=min_images,
        ))
    return pooled, per_emotion
