"""Coverage study of the measurement model's 95% intervals for rater effects (issue #18).

Run from the repository root:  python bench/ratermodel_coverage.py [--seeds N] [--quick]

Seeded EmoNet-like simulations (rm.simulate_ratings; 40 emotions on 0..7, per-emotion deviation
of a rater's effect from the rater's own mean with sd 0.25 logits), two sizes:

  HQ:  2,500 images x 4 ratings, 8 experts (seeds 101..);
  big: 20,000 images x 3 ratings, 30 experts (seeds 201..).

For each fit: the share of presence and intensity intervals (shift +- 1.96 se) that contain the
truth, overall and by |true deviation from the rater's own mean over the emotions| (buckets in
logits), and the estimated per-emotion sd (tau_s, tau_d) beside the truth's (the sd of the
centred true effects around each rater's mean). Averages over the seeds are printed last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotation.agreement import ratermodel as rm  # noqa: E402

BUCKETS = (0.0, 0.1, 0.25, np.inf)
SIZES = {"HQ": (2500, 4, 8, 101), "big": (20_000, 3, 30, 201)}


def _true_tau(x: np.ndarray) -> float:
    """The sd of the true effects around their rater's mean, the emotion's centring undone:
    residuals of rows and columns removed, over (R - 1)(E - 1) degrees of freedom."""
    dev = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    return float(np.sqrt((dev ** 2).sum() / ((x.shape[0] - 1) * (x.shape[1] - 1))))


def study(n_images: int, k: int, n_raters: int, seed: int) -> dict[str, float]:
    """One seeded fit: coverage rates (overall and per bucket) and tau estimates."""
    sim = rm.simulate_ratings(np.random.default_rng(seed), n_images=n_images, ratings_per_image=k,
                              n_raters=n_raters)
    t0 = time.perf_counter()
    fit = rm.fit_rater_model(sim.units, sim.raters, sim.values, scale_max=7)
    out: dict[str, float] = {"seconds": time.perf_counter() - t0, "converged": float(fit.converged)}
    for name, est, se, truth, tau in (
            ("pres", fit.presence_shift, fit.presence_se, sim.presence_shift, "tau_s"),
            ("int", fit.intensity_latent, fit.intensity_latent_se, sim.intensity_latent, "tau_d")):
        cov = np.abs(est - truth) <= rm.Z95 * se
        out[f"{name}"] = float(cov.mean())
        dev = np.abs(truth - truth.mean(axis=1, keepdims=True))
        for lo, hi in zip(BUCKETS[:-1], BUCKETS[1:], strict=True):
            sel = (dev >= lo) & (dev < hi)
            out[f"{name}_{lo:g}"] = float(cov[sel].mean()) if sel.any() else float("nan")
        out[f"{name}_tau"] = fit.effect_sd.get(tau, float("nan"))
        out[f"{name}_tau_true"] = _true_tau(truth)
        z = (est - truth) / se
        out[f"{name}_zsd"] = float(z.std())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--quick", action="store_true", help="HQ size only")
    ap.add_argument("--big", action="store_true", help="big size only")
    args = ap.parse_args()
    cols = ["pres", "pres_0", "pres_0.1", "pres_0.25", "int", "int_0", "int_0.1", "int_0.25"]
    for size, (n, k, r, seed0) in SIZES.items():
        if (args.quick and size != "HQ") or (args.big and size != "big"):
            continue
        print(f"{size}: {n:,} images x {k} ratings x 40 emotions, {r} experts; coverage of 95% intervals "
              f"(overall, then by |deviation from the rater's mean| in {BUCKETS[1:-1]} logits)")
        print("  seed  " + " ".join(f"{c:>9}" for c in cols)
              + "  tau_s(est/true)  tau_d(est/true)  z-sd(p/i)   s")
        rows = []
        for seed in range(seed0, seed0 + args.seeds):
            res = study(n, k, r, seed)
            rows.append(res)
            print(f"  {seed:4d}  " + " ".join(f"{res[c]:9.3f}" for c in cols)
                  + f"   {res['pres_tau']:.3f}/{res['pres_tau_true']:.3f}"
                  + f"      {res['int_tau']:.3f}/{res['int_tau_true']:.3f}"
                  + f"    {res['pres_zsd']:.2f}/{res['int_zsd']:.2f}  {res['seconds']:5.1f}"
                  + ("" if res["converged"] else "  NOT CONVERGED"))
        mean = {c: float(np.nanmean([x[c] for x in rows])) for c in rows[0]}
        print("  mean  " + " ".join(f"{mean[c]:9.3f}" for c in cols)
              + f"   {mean['pres_tau']:.3f}/{mean['pres_tau_true']:.3f}"
              + f"      {mean['int_tau']:.3f}/{mean['int_tau_true']:.3f}"
              + f"    {mean['pres_zsd']:.2f}/{mean['int_zsd']:.2f}  {mean['seconds']:5.1f}")


if __name__ == "__main__":
    main()
