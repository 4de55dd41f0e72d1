"""A planner for leads: label reliability and alpha's interval width against ratings per image and
number of images (PURE: stdlib only). docs/agreement.md, "Measurement model" / "Planner", defines
the figures.

* Label reliability (Spearman-Brown): a label combining k ratings of reliability alpha has
  reliability ``k alpha / (1 + (k - 1) alpha)``.
* Interval width: the current 95% image-bootstrap interval width ``w0`` (median over emotions) at
  ``N0`` images and ``k0`` ratings per image is carried to ``N`` images and ``k`` ratings with the
  large-sample variance of the one-way intraclass correlation (Fisher; alpha on interval data is
  that coefficient up to O(1/N)): ``var ~ 2 (1 - r)^2 (1 + (k - 1) r)^2 / (k (k - 1) (N - 1))``, so
  ``w = w0 sqrt(var(N, k) / var(N0, k0))``. Anchoring on the observed width keeps what the
  formula does not know (zero inflation, the data's shape) in the scale; the formula supplies how
  the width changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PlanRow:
    ratings_per_image: int
    images: int
    label_reliability: float
    alpha_ci_width: float | None
    meets_target: bool


def spearman_brown(alpha: float, k: float) -> float:
    """Reliability of the mean of k ratings whose single-rating reliability is alpha."""
    if k <= 0:
        raise ValueError(f"ratings per image must be positive, got {k}")
    a = max(alpha, 0.0)
    return k * a / (1.0 + (k - 1.0) * a)


def ratings_needed(alpha: float, target: float) -> int | None:
    """Smallest whole number of ratings per image whose label reaches the target reliability;
    None when alpha <= 0 (no number of ratings will)."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target reliability must be between 0 and 1 (exclusive), got {target}")
    if alpha <= 0.0:
        return None
    if alpha >= target:
        return 1
    return math.ceil(target * (1.0 - alpha) / (alpha * (1.0 - target)) - 1e-9)


def icc_variance(r: float, k: float, n: float) -> float:
    """Large-sample variance of the one-way intraclass correlation (Fisher): n units, k ratings each."""
    if k <= 1 or n <= 1:
        return math.inf
    r = min(max(r, 0.0), 0.99)
    return 2.0 * (1.0 - r) ** 2 * (1.0 + (k - 1.0) * r) ** 2 / (k * (k - 1.0) * (n - 1.0))


def plan(*, mean_alpha: float, ci_width: float | None, images: int, ratings_per_image: float,
         target_reliability: float = 0.8, plan_images: int | None = None,
         max_ratings: int = 20) -> list[PlanRow]:
    """Rows for 2..max_ratings ratings per image (extended to the target's need, up to 50) at
    ``plan_images`` images (default: the current number). ``ci_width`` is the current median
    interval width (None: widths are not predicted)."""
    if images < 2:
        raise ValueError(f"at least 2 rated images are needed to plan, got {images}")
    if ratings_per_image <= 1:
        raise ValueError(f"the current ratings per image must be above 1, got {ratings_per_image}")
    n_plan = plan_images if plan_images is not None else images
    if n_plan < 2:
        raise ValueError(f"planned images must be at least 2, got {n_plan}")
    need = ratings_needed(mean_alpha, target_reliability)
    top = max(max_ratings, min(need or 0, 50))
    v0 = icc_variance(mean_alpha, ratings_per_image, images)
    rows: list[PlanRow] = []
    for k in range(2, top + 1):
        rel = spearman_brown(mean_alpha, k)
        width = None
        if ci_width is not None and math.isfinite(v0) and v0 > 0:
            width = ci_width * math.sqrt(icc_variance(mean_alpha, k, n_plan) / v0)
        rows.append(PlanRow(k, n_plan, rel, width, rel >= target_reliability))
    return rows
