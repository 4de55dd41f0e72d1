"""Result types (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import Id, Level


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha for one variable (one emotion).

    ``alpha`` is ``None`` exactly when ``reason`` is set. ``n_units``/``n_values`` count the
    pairable units (two or more ratings) and the ratings in them. ``observed_disagreement`` (D_o)
    and ``expected_disagreement`` (D_e) are in the squared units of the level's metric, with
    ``alpha = 1 - D_o / D_e``.
    """

    alpha: float | None
    reason: str | None
    level: Level
    n_units: int
    n_values: int
    observed_disagreement: float | None
    expected_disagreement: float | None


@dataclass(frozen=True)
class NonzeroShare:
    """Share of non-zero ratings for one emotion, with the zero-inflation warning."""

    emotion: int
    n_ratings: int
    n_nonzero: int
    nonzero_share: float | None
    warning: str | None


@dataclass(frozen=True)
class EmotionAgreement:
    """One emotion's line of an agreement report (see ``agreement_report``)."""

    emotion: int
    alpha: AlphaResult
    ci_low: float | None
    ci_high: float | None
    confidence: float
    n_boot: int
    nonzero: NonzeroShare
    warnings: tuple[str, ...]
    # Interval including rater sampling (image bootstrap + delete-one-rater jackknife); None with
    # ci_raters_reason when it cannot be given (see annotation.agreement.twoway).
    ci_raters_low: float | None = None
    ci_raters_high: float | None = None
    ci_raters_reason: str | None = None
    # Resamples in which alpha was undefined (left out of the percentiles) and, when the interval
    # was withheld because most were, the reason.
    n_boot_undefined: int = 0
    ci_reason: str | None = None
    # Zero inflation (annotation.agreement.zero_inflation): alpha on present vs absent, alpha on
    # the intensities where two or more raters marked the emotion present, Gwet's AC2.
    presence_alpha: AlphaResult | None = None
    intensity_alpha: AlphaResult | None = None
    ac2: float | None = None


@dataclass(frozen=True)
class PairKappa:
    """Quadratic-weighted Cohen's kappa of two raters on one emotion (``rater_a`` < ``rater_b``)."""

    emotion: int
    rater_a: Id
    rater_b: Id
    n_common: int
    kappa: float | None
    reason: str | None


@dataclass(frozen=True)
class RaterAgreement:
    """How one rater agrees with the others on one emotion.

    ``mean_kappa`` is the mean of the rater's defined pairwise kappas with every other rater;
    ``alpha_with`` is alpha over all raters and ``alpha_without`` alpha after removing this rater,
    so ``alpha_without > alpha_with`` means the rater lowers agreement.
    """

    rater: Id
    emotion: int
    n_kappas: int
    mean_kappa: float | None
    alpha_with: float | None
    alpha_without: float | None


@dataclass(frozen=True)
class AnnotatorTest:
    """EmoNet-Face "could be an annotator" test (two-sided Mann-Whitney U)."""

    n_candidate: int
    n_human: int
    u_statistic: float | None
    p_value: float | None
    could_be_annotator: bool | None
    verdict: str
    candidate_median: float | None
    human_median: float | None


@dataclass(frozen=True)
class SpearmanResult:
    """Spearman rho between model scores and the per-image median expert rating of one emotion."""

    emotion: int
    n: int
    rho: float | None
    p_value: float | None
    reason: str | None


@dataclass(frozen=True)
class StratumAlpha:
    """Alpha of one emotion within one demographic stratum."""

    emotion: int
    stratum: Id
    alpha: AlphaResult
    ci_low: float | None
    ci_high: float | None
    reliable: bool
    note: str | None


@dataclass(frozen=True)
class BinaryAgreement:
    """Binary-mode agreement of one emotion: nominal alpha plus the vote-pattern table.

    ``patterns`` maps ``"yes:no"`` (e.g. ``"3:0"``, ``"2:1"``) to the number of units with two or
    more votes showing that pattern, ordered by number of votes, then yes votes, descending.
    """

    emotion: int
    alpha: AlphaResult
    n_units_multi: int
    patterns: dict[str, int] = field(hash=False)
    warning: str | None
