"""Inter-annotator agreement statistics for emorate (pure: stdlib, numpy and scipy only).

Everything here works on a *long table* of ratings: parallel 1-D arrays ``units`` (image ids),
``raters`` (rater ids) and a value array ``values2d`` of shape ``(n_ratings, n_emotions)`` where
row ``i`` holds the ratings rater ``raters[i]`` gave image ``units[i]`` and NaN marks a missing
rating. No dense raters x images matrix is ever built: Krippendorff's alpha is computed from
per-unit value counts (the coincidence-matrix form of Krippendorff 2011), vectorised over all
emotions at once, and the bootstrap over units reduces to one matrix product of resample weights
with per-unit statistics. ``docs/agreement.md`` defines every figure produced here.

Contracts shared by the functions below:

* ``units`` and ``raters`` are 1-D arrays (ints or strings) with one entry per row of ``values2d``.
* ``domain`` is the ordered value domain of the scale, e.g. ``scale_domain(7) == (0, 1, ..., 7)``.
  Every non-NaN value must be an element of it (``ValueError`` otherwise). ``None`` means "the
  distinct observed values" (as in the ``krippendorff`` package); the platform always passes the
  project's scale so that unused scale points keep their place.
* Each (unit, rater) pair may occur in at most one row (``ValueError`` naming it otherwise).
* Undefined statistics are ``None`` together with a ``reason`` string; nothing returns NaN.

The package, along its seams (each module imports only the ones listed before it):

- constants.py: Constants shared by the agreement modules: reasons for undefined statistics, chunk sizes
- results.py: Result types
- forked.py: a pure computation in a forked child process, beside the caller's own work
- prepare.py: Input preparation
- units.py: Per-unit statistics (the core)
- coefficient.py: Krippendorff's alpha
- bootstrap.py: Bootstrap over units
- kappa.py: Pairwise quadratic-weighted Cohen's kappa and alpha without each rater
- twoway.py: Intervals that include rater sampling (image bootstrap + rater jackknife), mean alpha
- zero_inflation.py: Presence alpha, intensity alpha, Gwet's AC2
- alttest.py: The alternative annotator test (Calderon, Reichart & Dror 2025)
- raters.py: the "could be an annotator" test and Spearman against the expert median
- report.py: Zero inflation and the whole report
- strata.py: Demographic strata
- project.py: Everything a project snapshot needs, sharing the work
- binary.py: Binary mode
- ratermodel.py (imported by name, not re-exported): the measurement model (rater effects, soft
  labels, Dawid-Skene), docs/agreement.md "Measurement model" (#18)
- planner.py (imported by name): label reliability and interval width against ratings per image
"""

from __future__ import annotations

from .alttest import EPSILON_EXPERTS, AltTestExpert, AltTestResult, alt_test  # noqa: F401
from .alttest import MIN_IMAGES as ALT_TEST_MIN_IMAGES  # noqa: F401
from .binary import binary_agreement  # noqa: F401
from .bootstrap import (  # noqa: F401
    _F32_EXACT,
    _boot_alpha_from_sums,
    _boot_chunk,
    _boot_features,
    _boot_features_t,
    _boot_plan,
    _BootPlan,
    _bootstrap,
    _check_boot_args,
    _make_strata,
    _percentile_ci,
    _run_bootstrap,
    _Strata,
    bootstrap_alphas,
    bootstrap_ci,
    resample_indices,
)
from .coefficient import alpha, alpha_all  # noqa: F401
from .constants import (  # noqa: F401
    _BOOT_CHUNK_ENTRIES,
    _ROW_CHUNK_VALUES,
    CONDITIONAL_DESIGN_WARNING,
    LEVELS,
    REASON_NO_DEFINED_RESAMPLE,
    REASON_NO_PAIRABLE,
    REASON_NO_VARIATION,
    BoolArray,
    FloatArray,
    I64Array,
    Id,
    IntArray,
    Level,
)
from .forked import Forked, WorkerLost  # noqa: F401
from .kappa import (  # noqa: F401
    _kappa_from_moments,
    _loo_by_histogram,
    _loo_moment_results,
    _pairwise_from,
    _rater_agreement_from,
    _within_unit_pairs,
    pairwise_kappas,
    quadratic_kappa,
    rater_agreement,
)
from .prepare import (  # noqa: F401
    _as_1d,
    _as_values2d,
    _bad_value_error,
    _check_duplicates,
    _Domain,
    _encode,
    _encode_chunk,
    _factorize,
    _make_domain,
    _row_chunks,
    _unit_matrix,
    scale_domain,
)
from .project import PARALLEL_MIN_RATINGS, SnapshotStats, snapshot_stats  # noqa: F401
from .raters import _defined, _unit_medians, annotator_test, candidate_test, spearman_vs_median  # noqa: F401
from .report import _report_rows, agreement_report, agreement_report_with_mean, nonzero_shares  # noqa: F401
from .results import (  # noqa: F401
    AlphaResult,
    AnnotatorTest,
    BinaryAgreement,
    EmotionAgreement,
    NonzeroShare,
    PairKappa,
    RaterAgreement,
    SpearmanResult,
    StratumAlpha,
)
from .strata import CodedLabels, _strata_results, _subset_alpha, _unit_labels, alpha_by_stratum  # noqa: F401
from .twoway import Interval, MeanAlpha, jackknife_se, mean_alpha_interval, spearman_brown, two_way_intervals  # noqa: F401
from .units import (  # noqa: F401
    _alpha_from_stats,
    _count_stats,
    _finish,
    _fixed_distance,
    _moment_int_sums,
    _moment_results,
    _moment_stats,
    _moment_terms,
    _MomentSums,
    _ordinal_positions,
    _packed_int_sums,
    _packing_dtype,
    _prepare,
    _Prepared,
    _unit_stats,
    _UnitStats,
)
from .zero_inflation import ZeroInflation, gwet_ac2, zero_inflation  # noqa: F401

__all__ = [
    "ALT_TEST_MIN_IMAGES",
    "EPSILON_EXPERTS",
    "AltTestExpert",
    "AltTestResult",
    "alt_test",
    "Interval",
    "MeanAlpha",
    "ZeroInflation",
    "gwet_ac2",
    "jackknife_se",
    "mean_alpha_interval",
    "spearman_brown",
    "two_way_intervals",
    "zero_inflation",
    "SnapshotStats",
    "Forked",
    "WorkerLost",
    "PARALLEL_MIN_RATINGS",
    "AlphaResult",
    "AnnotatorTest",
    "CodedLabels",
    "BinaryAgreement",
    "EmotionAgreement",
    "Level",
    "NonzeroShare",
    "PairKappa",
    "RaterAgreement",
    "SpearmanResult",
    "StratumAlpha",
    "agreement_report",
    "agreement_report_with_mean",
    "alpha",
    "alpha_all",
    "alpha_by_stratum",
    "annotator_test",
    "binary_agreement",
    "bootstrap_alphas",
    "bootstrap_ci",
    "candidate_test",
    "nonzero_shares",
    "pairwise_kappas",
    "quadratic_kappa",
    "rater_agreement",
    "resample_indices",
    "scale_domain",
    "snapshot_stats",
    "spearman_vs_median",
]
# Also public, as they were when agreement was one module (constants, array aliases, helpers).
__all__ += [
    "BoolArray",
    "CONDITIONAL_DESIGN_WARNING",
    "FloatArray",
    "I64Array",
    "Id",
    "IntArray",
    "LEVELS",
    "REASON_NO_DEFINED_RESAMPLE",
    "REASON_NO_PAIRABLE",
    "REASON_NO_VARIATION",
]
