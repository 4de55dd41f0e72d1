"""Benchmark of the measurement model (annotation/agreement/ratermodel.py) beside median consolidation.

Run from the repository root:  python bench/ratermodel_bench.py [--quick]

Two sizes, 40 emotions on 0..7, EmoNet-like simulated ratings with known truth (about 20%
non-zero, interval alpha near 0.2, experts differing in threshold, shift and noise):

  HQ:  2,500 images x 4 ratings (8 experts): goal < 5 s;
  big: 100,000 images x 3 ratings (60 experts): goal < 60 s and < 2 GiB on 2 cores.

For each: the fit's wall time and its peak memory (tracemalloc: numpy reports its buffers), the
process peak RSS, and the reference from the same run: the median (and mean) of each image's
ratings over the same data, timed, and both labels' error against the simulated truth (the
expected rating of a typical expert). Ratios are ours / reference. Also the share of the rater
effects' 95% intervals that contain the truth (one seed) and the fit's pooling sds.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotation.agreement import ratermodel as rm  # noqa: E402


def _rmse(x: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(((x - truth) ** 2).mean()))


def run(name: str, n_images: int, k: int, n_raters: int, goal_s: float) -> None:
    sim = rm.simulate_ratings(np.random.default_rng(2026), n_images=n_images, ratings_per_image=k,
                              n_raters=n_raters)
    t0 = time.perf_counter()
    vv = sim.values.reshape(n_images, k, -1)  # simulate_ratings writes an image's k rows together
    median = np.median(vv, axis=1).T
    t_median = time.perf_counter() - t0
    t0 = time.perf_counter()
    mean = vv.mean(axis=1).T
    t_mean = time.perf_counter() - t0
    tracemalloc.start()
    t0 = time.perf_counter()
    fit = rm.fit_rater_model(sim.units, sim.raters, sim.values, scale_max=7)
    t_fit = time.perf_counter() - t0
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    truth = sim.expected_rating
    e_fit, e_med, e_mean = _rmse(fit.expected_rating, truth), _rmse(median, truth), _rmse(mean, truth)
    pres_mae = float(np.nanmean(np.abs(fit.presence_shift - sim.presence_shift)))
    int_mae = float(np.nanmean(np.abs(fit.intensity_latent - sim.intensity_latent)))
    print(f"{name}: {n_images:,} images x {k} ratings x 40 emotions, {n_raters} experts, "
          f"{sim.units.size * 40:,} values")
    print(f"  model fit       {t_fit:7.2f} s  ({fit.iterations} sweeps, converged={fit.converged}), "
          f"peak {peak / 2**20:,.0f} MiB traced, process peak RSS {rss:,.0f} MiB  [goal < {goal_s:g} s]")
    print(f"  median (peer)   {t_median:7.3f} s   mean {t_mean:.3f} s   -> time ratio ours/median "
          f"{t_fit / t_median:,.0f}x")
    print(f"  error vs truth  model {e_fit:.3f}   median {e_med:.3f}   mean {e_mean:.3f}   -> ratio "
          f"model/median {e_fit / e_med:.2f}, model/mean {e_fit / e_mean:.2f}")
    print(f"  rater effects   presence MAE {pres_mae:.3f} logits, intensity MAE {int_mae:.3f} (latent)")
    cov_p = float(np.nanmean(np.abs(fit.presence_shift - sim.presence_shift) <= rm.Z95 * fit.presence_se))
    cov_i = float(np.nanmean(np.abs(fit.intensity_latent - sim.intensity_latent) <= rm.Z95 * fit.intensity_latent_se))
    taus = ", ".join(f"{k} {v:.3f}" for k, v in getattr(fit, "effect_sd", {}).items())
    print(f"  95% intervals   cover presence {cov_p:.3f}, intensity {cov_i:.3f} (one seed; "
          f"bench/ratermodel_coverage.py for the study); pooling sds: {taus or 'n/a'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="HQ size only")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    run("HQ", 2500, 4, 8, 5.0)
    if not args.quick:
        run("big", 100_000, 3, 60, 60.0)


if __name__ == "__main__":
    main()
