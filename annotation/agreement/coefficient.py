"""Krippendorff's alpha (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .constants import Level
from .prepare import _as_1d
from .results import AlphaResult
from .units import _alpha_from_stats, _prepare, _unit_stats


def alpha_all(
    units: npt.ArrayLike,
    raters: npt.ArrayLike | None,
    values2d: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
) -> list[AlphaResult]:
    """Krippendorff's alpha for every column (emotion) of ``values2d``, vectorised.

    ``values2d`` has shape (n_ratings, n_emotions), NaN = missing. ``raters`` (or ``None`` to
    skip the check) is only used to reject duplicate (unit, rater) rows.
    """
    p = _prepare(units, values2d, level=level, domain=domain, raters=raters)
    return _alpha_from_stats(p, _unit_stats(p))


def alpha(
    units: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    raters: npt.ArrayLike | None = None,
) -> AlphaResult:
    """Krippendorff's alpha of one variable from 1-D arrays of equal length (NaN = missing)."""
    v = _as_1d("values", np.asarray(values, dtype=np.float64))
    return alpha_all(units, raters, v[:, None], level=level, domain=domain)[0]
