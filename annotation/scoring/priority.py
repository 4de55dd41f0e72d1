"""Queue priority: which image an expert should rate next ("disagreement first"). PURE: numpy only.

The rating queue serves images by ``Image.priority`` descending. ``compute_priorities`` gives every
image of a project

    priority = w_disagreement * D + w_model_gap * G + w_model_signal * U
             + w_missing * M + w_quota * Q + w_jitter * J

with every term in [0, 1] (S = the project's scale maximum, T = its target ratings per image,
c = the image's number of expert ratings, r_e = reliability weight of emotion e):

- D, human disagreement (images with c >= 2): the spread of the experts' ratings per emotion,
  std / (S / 2) (1 = half the raters at 0 and half at S), averaged over the emotions *in play*
  (someone rated it above 0; unanimous zeros are agreement, not noise) with weights r_e.
  r_e = clip(alpha_e, reliability_floor, 1) from the latest agreement snapshot (1 where alpha
  is unknown or there is no snapshot): disagreement on an emotion the experts usually agree on
  says more about the image than disagreement on one they never agree on.
- G, model-human gap (images with c >= 1 and a model score): |model - expert median| / S per
  emotion, the model's score mapped onto the project scale (x S / model_scale_max, clipped to
  0..S), averaged with weights r_e over the emotions in play (median > 0 or model >= 0.5).
- U, model signal (images no expert has rated, with a model score): the mean of the 3 largest
  |score_e - baseline_e| / model_scale_max, clipped to 1; baseline = the model's neutral means
  when known, else the per-emotion median of the model's scores over the project. An unrated
  face the model finds strongly expressive goes to the experts before a blank one.
- M, missing ratings: (T - c) / T, 0 once the target is reached.
- Q, stratum quota: for each demographic key (ethnicity, gender, age), a stratum's coverage is
  sum(min(c, T)) / (T x its images); a stratum below the overall coverage gets
  (overall - stratum) / overall, clipped to 0..1; Q is the mean over the keys the image has a
  label for. Under-covered strata move up until the strata are balanced.
- J, jitter: a fixed pseudo-random number per image id in [0, 1): breaks ties without
  favouring import order, the same on every recompute.
- I, information gain (optional, weight 0 by default; issue #18): the measurement model's expected
  fall in the labels' posterior variance from one more rating (annotation.agreement.ratermodel,
  ``information_gain``), divided by its largest value over the project (0 where unknown). Never
  applied to the model-independent sample below: those images stay allocated by coverage,
  disagreement and quota only. It counts as "disagreement" in the allocation reason.

Weights are a project setting (Project.priority_weights, JSON); missing keys take
DEFAULT_WEIGHTS. Any finite number is allowed (a negative weight inverts a term).

Allocation provenance (issue #17): ``dominant_reasons`` names, per image, the term that contributes
most to its priority (weight x term): "disagreement" (D), "model_gap" (G + U), "quota" (Q) or
"coverage" (M, and any image whose terms are all 0; jitter only breaks ties and never counts). The
recompute stores it as Image.priority_reason and every claim copies it into
Assignment.allocation_reason, so each rating says why it was collected.

Model-independent evaluation sample (issue #17): the model terms G and U send ratings to images
where the model disagrees with the experts, which flatters that model when it is evaluated on the
same ratings (the statistics review measured +0.06 Spearman). A fixed share of the images,
``model_independent_share`` (default 0.2; chosen by a hash of the image's prompt, or of its id when it has
none: ``model_independent``),
never gets G or U: their ratings are allocated by human data only, and the model-vs-expert figures
are computed on them (annotation.scoring.selectors.model_summary says so).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_WEIGHTS: Final[Mapping[str, float]] = {
    "disagreement": 1.0,
    "model_gap": 0.5,
    "model_signal": 0.25,
    "missing": 0.25,
    "quota": 0.25,
    "jitter": 0.001,
    "reliability_floor": 0.1,
    "model_independent_share": 0.2,
    "information_gain": 0.0,
}
TERMS: Final = ("disagreement", "model_gap", "model_signal", "missing", "quota", "jitter")
MODEL_IN_PLAY: Final = 0.5  # model score (project scale) from which an emotion counts as in play
TOP_K_SIGNAL: Final = 3


@dataclass(frozen=True)
class PriorityWeights:
    disagreement: float
    model_gap: float
    model_signal: float
    missing: float
    quota: float
    jitter: float
    reliability_floor: float
    model_independent_share: float = 0.0
    information_gain: float = 0.0


def model_independent(image_ids: npt.ArrayLike, share: float, groups: npt.ArrayLike | None = None
                      ) -> npt.NDArray[np.bool_]:
    """Whether each image belongs to the model-independent evaluation sample: a fixed pseudo-random
    number below ``share``, from a 64-bit hash of the image's group (its prompt: ``groups``, aligned
    with the ids, "" for none) where it has one, else of its id (a multiplicative hash,
    independent of ``jitter``). By group, so that the faces of one prompt are in or out together:
    a release grouped by prompt can then draw its whole test split from the sample."""
    ids = np.asarray(image_ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = (ids * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
    if groups is not None:
        g = np.asarray(groups, dtype=str)
        if g.shape != ids.shape:
            raise ValueError(f"groups has shape {g.shape}, image_ids {ids.shape}")
        names, inverse = np.unique(g, return_inverse=True)
        by_name = np.array([int.from_bytes(hashlib.blake2b(n.strip().encode(), digest_size=8,
                                                           person=b"emorate-mi").digest(), "big") >> 11
                            for n in names.tolist()], dtype=np.uint64)
        named = np.char.strip(g) != ""
        h = np.where(named, by_name[inverse], h)
    return h.astype(np.float64) / 2.0**53 < share


def resolve_weights(overrides: Mapping[str, object] | None = None) -> PriorityWeights:
    """DEFAULT_WEIGHTS updated with `overrides`. Raises ValueError naming an unknown key or a value
    that is not a finite number (reliability_floor must lie in 0..1)."""
    merged = dict(DEFAULT_WEIGHTS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_WEIGHTS:
            raise ValueError(f"unknown priority weight {key!r} (allowed: {', '.join(DEFAULT_WEIGHTS)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise ValueError(f"priority weight {key!r} must be a finite number, got {value!r}")
        merged[key] = float(value)
    for key in ("reliability_floor", "model_independent_share"):
        if not 0.0 <= merged[key] <= 1.0:
            raise ValueError(f"{key} must lie in 0..1, got {merged[key]}")
    return PriorityWeights(**merged)


@dataclass(frozen=True)
class PriorityInputs:
    """Everything the formula reads. Arrays are numpy; `image_ids` sorted ascending and unique.

    rating_image_ids/rating_values: one row per expert rating (intensity), any order; ratings of
    images not in `image_ids` are ignored. model_image_ids/model_scores: one row per scored image
    (model scale). strata: key -> label per image (aligned with image_ids; "" = unknown).
    reliability: alpha per emotion (NaN = unknown) or None.
    """

    image_ids: IntArray
    rating_image_ids: IntArray
    rating_values: npt.NDArray[np.integer]
    scale_max: int
    target: int
    n_emotions: int
    reliability: FloatArray | None = None
    model_image_ids: IntArray | None = None
    model_scores: FloatArray | None = None
    model_scale_max: float = 7.0
    neutral_means: FloatArray | None = None
    strata: Mapping[str, npt.NDArray[np.str_]] | None = None
    groups: npt.NDArray[np.str_] | None = None  # prompt per image ("" = none): the model-independent sample
    information_gain: FloatArray | None = None  # per image (aligned with image_ids), 0..1; NaN/None = unknown


@dataclass(frozen=True)
class PriorityTerms:
    """The terms (each (n,), in [0, 1]) and the resulting priority, aligned with image_ids."""

    image_ids: IntArray
    disagreement: FloatArray
    model_gap: FloatArray
    model_signal: FloatArray
    missing: FloatArray
    quota: FloatArray
    jitter: FloatArray
    priority: FloatArray
    n_ratings: IntArray
    information_gain: FloatArray | None = None


REASONS: Final = ("coverage", "disagreement", "model_gap", "quota")


def dominant_reasons(terms: PriorityTerms, weights: PriorityWeights | None = None) -> npt.NDArray[np.str_]:
    """Per image, the priority term that contributes most (REASONS; module docstring). Ties go to
    the earlier reason in REASONS; an image with no positive contribution is "coverage"."""
    w = weights or resolve_weights()
    gain = terms.information_gain if terms.information_gain is not None else 0.0
    parts = np.stack([w.missing * terms.missing, w.disagreement * terms.disagreement + w.information_gain * gain,
                      w.model_gap * terms.model_gap + w.model_signal * terms.model_signal,
                      w.quota * terms.quota])
    best = np.argmax(parts, axis=0)
    best[parts.max(axis=0) <= 0] = 0
    names: npt.NDArray[np.str_] = np.asarray(REASONS)[best]
    return names


def reliability_weights(alpha: FloatArray | None, n_emotions: int, floor: float) -> FloatArray:
    """r_e = clip(alpha_e, floor, 1); 1 where alpha is unknown (NaN) or not given."""
    if alpha is None:
        return np.ones(n_emotions)
    a = np.asarray(alpha, dtype=np.float64)
    if a.shape != (n_emotions,):
        raise ValueError(f"reliability must have {n_emotions} values, got shape {a.shape}")
    return np.where(np.isnan(a), 1.0, np.clip(a, floor, 1.0))


def jitter(image_ids: IntArray) -> FloatArray:
    """A fixed pseudo-random number in [0, 1) per id (Knuth's multiplicative hash)."""
    h = (image_ids.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    return h.astype(np.float64) / 2.0**32


def _weighted_mean(x: FloatArray, in_play: npt.NDArray[np.bool_], r: FloatArray) -> FloatArray:
    w = in_play * r[None, :]
    total = w.sum(axis=1)
    out = np.zeros(x.shape[0])
    ok = total > 0
    out[ok] = (x[ok] * w[ok]).sum(axis=1) / total[ok]
    return out


def _rating_stats(pos: IntArray, values: npt.NDArray[np.integer], n_images: int, scale_max: int
                  ) -> tuple[IntArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Per image: count, std and median per emotion, and whether any rating was above 0.

    The ratings go into a dense (images rated, max ratings per image, emotions) int16 block
    (a few ratings per image: small), padded with a sentinel above the scale; one sort along the
    rating axis then gives the medians.
    """
    n_e = values.shape[1]
    counts = np.bincount(pos, minlength=n_images).astype(np.int64)
    std = np.zeros((n_images, n_e))
    med = np.zeros((n_images, n_e))
    anyp = np.zeros((n_images, n_e), dtype=bool)
    if pos.size == 0:
        return counts, std, med, anyp
    order = np.argsort(pos, kind="stable")
    p = pos[order]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    rows = p[starts]
    run = np.repeat(np.arange(rows.size), np.diff(np.r_[starts, p.size]))
    rank = np.arange(p.size) - starts[run]
    c = counts[rows]
    sentinel = scale_max + 1
    block = np.full((rows.size, int(c.max()), n_e), sentinel, dtype=np.int16)
    block[run, rank] = values[order]
    real = block != sentinel
    x = np.where(real, block, 0).astype(np.float64)
    cf = c[:, None].astype(np.float64)
    mean = x.sum(axis=1) / cf
    std[rows] = np.sqrt(np.maximum((x * x).sum(axis=1) / cf - mean * mean, 0.0))
    anyp[rows] = (x > 0).any(axis=1)
    block.sort(axis=1)  # the sentinel sorts last
    lo = np.take_along_axis(block, ((c - 1) // 2)[:, None, None], axis=1)[:, 0, :]
    hi = np.take_along_axis(block, (c // 2)[:, None, None], axis=1)[:, 0, :]
    med[rows] = (lo.astype(np.float64) + hi) / 2.0
    return counts, std, med, anyp


def _quota(counts: IntArray, target: int, strata: Mapping[str, npt.NDArray[np.str_]] | None, n: int) -> FloatArray:
    if not strata:
        return np.zeros(n)
    done = np.minimum(counts, target).astype(np.float64)
    total = np.zeros(n)
    keys = np.zeros(n)
    for key, labels in strata.items():
        lab = np.asarray(labels).astype(str)
        if lab.shape != (n,):
            raise ValueError(f"stratum {key!r} has {lab.shape} labels for {n} images")
        known = lab != ""
        if not known.any():
            continue
        overall = done[known].sum() / (target * known.sum())
        keys += known
        if overall <= 0:
            continue
        uniq, inv = np.unique(lab[known], return_inverse=True)
        cov = np.bincount(inv, weights=done[known], minlength=uniq.size) / (
            target * np.bincount(inv, minlength=uniq.size))
        boost = np.clip((overall - cov) / overall, 0.0, 1.0)
        total[known] += boost[inv]
    out = np.zeros(n)
    np.divide(total, keys, out=out, where=keys > 0)
    return out


def compute_priorities(inputs: PriorityInputs, weights: PriorityWeights | None = None) -> PriorityTerms:
    """Every image's priority terms and priority (formula: module docstring). O(ratings x emotions)."""
    w = weights or resolve_weights()
    ids = np.asarray(inputs.image_ids, dtype=np.int64)
    n, n_e, big_s, big_t = ids.size, inputs.n_emotions, float(inputs.scale_max), inputs.target
    if n and np.any(ids[1:] <= ids[:-1]):
        raise ValueError("image_ids must be sorted ascending and unique")
    if inputs.scale_max < 1 or big_t < 1:
        raise ValueError("scale_max and target must be at least 1")
    r = reliability_weights(inputs.reliability, n_e, w.reliability_floor)

    rid = np.asarray(inputs.rating_image_ids, dtype=np.int64)
    vals = np.asarray(inputs.rating_values).reshape(rid.size, n_e)
    pos = np.searchsorted(ids, rid)
    known = (pos < n) & (ids[np.minimum(pos, max(n - 1, 0))] == rid) if n else np.zeros(rid.size, bool)
    counts, std, med, anyp = _rating_stats(pos[known], vals[known], n, inputs.scale_max)

    disagreement = np.where(counts >= 2, _weighted_mean(std / (big_s / 2.0), anyp, r), 0.0)

    model_gap = np.zeros(n)
    model_signal = np.zeros(n)
    if inputs.model_image_ids is not None and inputs.model_scores is not None and len(inputs.model_image_ids):
        mid = np.asarray(inputs.model_image_ids, dtype=np.int64)
        ms = np.asarray(inputs.model_scores, dtype=np.float64).reshape(mid.size, n_e)
        mpos = np.searchsorted(ids, mid)
        mk = (mpos < n) & (ids[np.minimum(mpos, max(n - 1, 0))] == mid) if n else np.zeros(mid.size, bool)
        mpos, ms = mpos[mk], ms[mk]
        has = np.zeros(n, dtype=bool)
        has[mpos] = True
        scores = np.full((n, n_e), np.nan)
        scores[mpos] = ms
        on_scale = np.clip(scores * big_s / inputs.model_scale_max, 0.0, big_s)
        rated = has & (counts >= 1)
        if rated.any():
            gap = np.abs(on_scale[rated] - med[rated]) / big_s
            play = (med[rated] > 0) | (on_scale[rated] >= MODEL_IN_PLAY)
            model_gap[rated] = _weighted_mean(gap, play, r)
        unrated = has & (counts == 0)
        if unrated.any():
            baseline = (np.asarray(inputs.neutral_means, dtype=np.float64) if inputs.neutral_means is not None
                        else np.median(ms, axis=0))
            dev = np.abs(scores[unrated] - baseline[None, :]) / inputs.model_scale_max
            k = min(TOP_K_SIGNAL, n_e)
            top = -np.sort(-dev, axis=1)[:, :k]
            model_signal[unrated] = np.clip(top.mean(axis=1), 0.0, 1.0)
        held_out = model_independent(ids, w.model_independent_share, inputs.groups)
        model_gap[held_out] = 0.0
        model_signal[held_out] = 0.0

    missing = np.clip(big_t - counts, 0, big_t).astype(np.float64) / big_t
    quota = _quota(counts, big_t, inputs.strata, n)
    jit = jitter(ids)
    priority = (w.disagreement * disagreement + w.model_gap * model_gap + w.model_signal * model_signal
                + w.missing * missing + w.quota * quota + w.jitter * jit)
    gain = None
    if inputs.information_gain is not None:
        gain = np.clip(np.nan_to_num(np.asarray(inputs.information_gain, dtype=np.float64).reshape(n)), 0.0, 1.0)
        gain[model_independent(ids, w.model_independent_share, inputs.groups)] = 0.0
        priority = priority + w.information_gain * gain
    return PriorityTerms(image_ids=ids, disagreement=disagreement, model_gap=model_gap, model_signal=model_signal,
                         missing=missing, quota=quota, jitter=jit, priority=priority, n_ratings=counts,
                         information_gain=gain)
