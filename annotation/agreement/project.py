"""Everything a project snapshot needs, sharing the work (part of annotation.agreement; contracts in its docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy.typing as npt

from .bootstrap import _check_boot_args
from .constants import Level
from .forked import Forked
from .kappa import _loo_alphas, _pairwise_from, _rater_agreement_from, loo_matrix
from .prepare import _as_1d, _check_duplicates
from .report import _report_rows, _report_shares, report_mean_alpha
from .results import AlphaResult, EmotionAgreement, NonzeroShare, PairKappa, RaterAgreement, StratumAlpha
from .strata import MAX_CI_WIDTH, CodedLabels, _strata_points, _strata_results, _unit_labels
from .twoway import MeanAlpha
from .units import _alpha_from_stats, _prepare, _unit_stats
from .zero_inflation import ZeroInflation, ratings_per_unit

# From this many ratings snapshot_stats computes the rater figures in a forked child beside the
# bootstrap (below it the fork costs more than it saves).
PARALLEL_MIN_RATINGS = 20_000


@dataclass(frozen=True)
class SnapshotStats:
    """The results of ``snapshot_stats``; each field equals the corresponding single call."""

    report: list[EmotionAgreement]
    kappas: list[PairKappa]
    raters: list[RaterAgreement]
    strata: dict[str, list[StratumAlpha]] = field(hash=False)
    # The mean alpha over the defined emotions with its intervals, and the mean number of ratings
    # per pairable image and emotion (the k of the consolidated label's Spearman-Brown reliability).
    mean_alpha: MeanAlpha | None = field(default=None, compare=False)
    ratings_per_image: float | None = field(default=None, compare=False)


def snapshot_stats(
    units: npt.ArrayLike,
    raters: npt.ArrayLike,
    values2d: npt.ArrayLike,
    strata: Mapping[str, npt.ArrayLike | CodedLabels] | None = None,
    *,
    level: Level = "interval",
    domain: Sequence[float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_units: int = 30,
    max_ci_width: float = MAX_CI_WIDTH,
    min_nonzero: int = 30,
    min_nonzero_share: float = 0.05,
    parallel: bool | None = None,
) -> SnapshotStats:
    """``agreement_report``, ``pairwise_kappas``, ``rater_agreement`` and ``alpha_by_stratum`` (one
    per key of ``strata``) in one call, with identical results, sharing validation, encoding,
    per-unit statistics and one set of bootstrap draws.

    Equivalent to::

        report = agreement_report(units, raters, values2d, level=level, domain=domain,
                                  n_boot=n_boot, seed=seed, confidence=confidence,
                                  min_nonzero=min_nonzero, min_nonzero_share=min_nonzero_share)
        kappas = pairwise_kappas(units, raters, values2d, domain=D)
        raters_ = rater_agreement(units, raters, values2d, domain=D, level=level, kappas=kappas)
        strata_ = {key: alpha_by_stratum(units, values2d, labels, level=level, domain=domain,
                                         min_units=min_units, max_ci_width=max_ci_width,
                                         n_boot=n_boot, seed=seed,
                                         confidence=confidence, raters=raters)
                   for key, labels in strata.items()}

    where D is ``domain`` or, when ``None``, the distinct observed values.

    ``parallel``: the rater figures (leave-one-out alphas, pairwise kappas, each rater's agreement)
    are computed in a forked child process (annotation.agreement.forked) while this one runs the
    bootstrap, so that both cores work (#21); None decides by size (PARALLEL_MIN_RATINGS), False
    computes them here. The results are the same either way, bit for bit.
    """
    _check_boot_args(n_boot, confidence)
    u = _as_1d("units", units)
    r = _as_1d("raters", raters)
    if r.size != u.size:
        raise ValueError(f"raters has {r.size} entries but units has {u.size}")
    p = _prepare(u, values2d, level=level, domain=domain, raters=None)
    rater_idx, rater_ids = _check_duplicates(p.unit_idx, p.unit_ids, r)
    keys = {name: _unit_labels(name, u, p.unit_idx, p.n_units, lab) for name, lab in (strata or {}).items()}
    st = _unit_stats(p)
    point = _alpha_from_stats(p, st)
    n_raters = int(rater_ids.size)

    key_list = list(keys.values())

    def side() -> tuple[list[list[AlphaResult]], list[PairKappa], list[RaterAgreement],
                        tuple[list[NonzeroShare], list[ZeroInflation]], list[list[list[AlphaResult]]]]:
        # everything that needs no resamples
        without = _loo_alphas(p, st, rater_idx, n_raters)
        kappas = _pairwise_from(p.unit_idx, rater_idx, rater_ids, p.get_codes())
        rater_rows = _rater_agreement_from(p, st, rater_idx, rater_ids, kappas, without)
        shares_zi = _report_shares(p, st, min_nonzero, min_nonzero_share)
        return without, kappas, rater_rows, shares_zi, _strata_points(p, st, key_list)

    with Forked(side, parallel=u.size >= PARALLEL_MIN_RATINGS if parallel is None else parallel,
                name="agreement worker (leave-one-out alphas, kappas, zero inflation, strata alphas)") as worker:
        main, per_key = _strata_results(
            p,
            st,
            key_list,
            n_boot=n_boot,
            seed=seed,
            confidence=confidence,
            min_units=min_units,
            max_ci_width=max_ci_width,
            want_main=True,
            points=lambda: worker.result()[4],
        )
        without, kappas, rater_rows, shares_zi, _ = worker.result()
    assert main is not None
    loo = loo_matrix(without)
    report = _report_rows(p, point, main, n_boot, confidence, min_nonzero, min_nonzero_share, loo, st, shares_zi)
    return SnapshotStats(
        report,
        kappas,
        rater_rows,
        dict(zip(keys, per_key, strict=True)),
        mean_alpha=report_mean_alpha(point, main, loo, confidence),
        ratings_per_image=ratings_per_unit(p, st),
    )
