"""PURE: scoring a rater's calibration ratings so that leaving every slider at 0 cannot pass.

The reference of a calibration image is a consensus of experts (their median, or a release's
consensus). Under zero inflation that median is 0 on most emotions, so a mean |rater - reference|
over all 40 emotions rewards a rater who marks nothing (the review's check 11: an all-zero rater
beat a genuine expert in every simulated 10-image set). Scored here instead, separately:

- **presence**: positive specific agreement ``2 |both present| / (|rater present| + |reference
  present|)`` over every item and emotion (the Dice overlap of what the rater saw with what the
  reference sees), with the rater's sensitivity and specificity beside it. An all-zero rater has
  presence agreement 0.
- **intensity**: mean |rater - reference| on the cells both mark present.

Admission bar (``calibration_verdict``): the reference is itself uncertain, so the bar comes from
the experts: each expert's score against the median of the *other* experts on the calibration
images (``expert_scores``, "how well does a panel member match such a reference?"). A newcomer
passes when both scores lie within the one-sided 95% t prediction bound for one more expert
(presence agreement never required below ``PRESENCE_FLOOR``). Without three such experts a fixed
bar is used (``MIN_PRESENCE_AGREEMENT``, ``MAX_INTENSITY_DIFF``) and the reason says so. Either
way a rater who marks nothing has presence agreement 0 and cannot pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MIN_PRESENCE_AGREEMENT = 0.3
MAX_INTENSITY_DIFF = 2.0
PRESENCE_FLOOR = 0.1


@dataclass(frozen=True)
class CalibrationScore:
    n_items: int
    presence_agreement: float | None  # None when neither side marked anything present
    sensitivity: float | None  # share of reference-present cells the rater marked present
    specificity: float | None  # share of reference-absent cells the rater left at 0
    intensity_diff: float | None  # mean |rater - reference| where both mark present
    n_copresent: int


def calibration_score(values: npt.ArrayLike, reference: npt.ArrayLike) -> CalibrationScore:
    """Score (n_items, n_emotions) ratings against the reference of the same items (NaN = not rated)."""
    x = np.asarray(values, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if x.shape != ref.shape or x.ndim != 2:
        raise ValueError(f"values and reference must have the same 2-D shape, got {x.shape} and {ref.shape}")
    ok = ~(np.isnan(x) | np.isnan(ref))
    rp = (x > 0) & ok
    fp = (ref > 0) & ok
    both = rp & fp
    n_r, n_f, n_b = int(rp.sum()), int(fp.sum()), int(both.sum())
    absent = ok & ~fp
    return CalibrationScore(
        n_items=int(x.shape[0]),
        presence_agreement=(2 * n_b / (n_r + n_f)) if n_r + n_f else None,
        sensitivity=(n_b / n_f) if n_f else None,
        specificity=float((absent & ~rp).sum() / absent.sum()) if absent.any() else None,
        intensity_diff=float(np.abs(x[both] - ref[both]).mean()) if n_b else None,
        n_copresent=n_b,
    )


@dataclass(frozen=True)
class CalibrationVerdict:
    passed: bool | None  # None: nothing to judge (no item rated, or nobody marked anything present)
    min_presence: float
    max_intensity_diff: float
    reason: str


def _prediction_bound(xs: Sequence[float], *, lower: bool, level: float = 0.95) -> float:
    """One-sided t prediction bound for one more value from the population of ``xs``:
    mean -/+ t(level, n-1) * sd * sqrt(1 + 1/n)."""
    from scipy.special import stdtrit  # type: ignore[import-untyped,unused-ignore]  # not scipy.stats: ~1 s

    x = np.asarray(xs, dtype=np.float64)
    n = x.size
    half = float(stdtrit(n - 1, level) * x.std(ddof=1) * np.sqrt(1.0 + 1.0 / n))
    return float(x.mean() - half) if lower else float(x.mean() + half)


def calibration_verdict(score: CalibrationScore, expert_scores: Sequence[CalibrationScore] = (), *,
                        min_presence: float = MIN_PRESENCE_AGREEMENT,
                        max_intensity_diff: float = MAX_INTENSITY_DIFF) -> CalibrationVerdict:
    """Whether a calibration score clears the admission bar (see the module docstring)."""
    pres = [s.presence_agreement for s in expert_scores if s.presence_agreement is not None]
    diffs = [s.intensity_diff for s in expert_scores if s.intensity_diff is not None]
    source = "fixed bar: fewer than 3 experts rated the calibration images"
    if len(pres) >= 3:
        min_presence = max(PRESENCE_FLOOR, _prediction_bound(pres, lower=True))
        source = f"bar from {len(pres)} experts against the others"
    if len(diffs) >= 3:
        max_intensity_diff = _prediction_bound(diffs, lower=False)
    if score.n_items == 0 or score.presence_agreement is None:
        return CalibrationVerdict(None, min_presence, max_intensity_diff, "nothing marked present on either side")
    if score.presence_agreement < min_presence:
        return CalibrationVerdict(False, min_presence, max_intensity_diff,
                                  f"presence agreement {score.presence_agreement:.2f} below {min_presence:.2f} ({source})")
    if score.intensity_diff is not None and score.intensity_diff > max_intensity_diff:
        return CalibrationVerdict(False, min_presence, max_intensity_diff,
                                  f"intensity difference {score.intensity_diff:.2f} above {max_intensity_diff:.2f} "
                                  f"({source})")
    shown = 0.0 if score.intensity_diff is None else score.intensity_diff
    return CalibrationVerdict(True, min_presence, max_intensity_diff,
                              f"presence agreement {score.presence_agreement:.2f} (at least {min_presence:.2f}), "
                              f"intensity difference {shown:.2f} (at most {max_intensity_diff:.2f}); {source}")
