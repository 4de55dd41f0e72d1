"""The release's agreement call at 1,000,000 images x 3 ratings x 40 emotions (#21 goal 3).

A release (annotation.services.releases) calls ``agreement_report_with_mean`` (alpha, 1,000-resample
image intervals, leave-one-rater-out two-way intervals, zero inflation, the mean alpha with its
intervals) and ``alpha_all`` on the int16 (n, 40) table as it comes from the binary COPY. The whole
release must stay under 1.5 GiB, so this call must add under 600 MiB to its inputs and take under 25 s.

Inputs: seeded synthetic arrays like bench/_setup.seed_ratings (every image rated by 3 of 20 raters,
about 80% zeros), built in chunks so that building them adds no peak of its own. Printed: time and
peak RSS above the inputs (ru_maxrss minus the resident size once the inputs exist). Reference in
the same run: the krippendorff package's alpha (alpha only, no intervals) on the first N_REF images,
all 40 emotions, scaled linearly to N_IMAGES (its work is linear in the units), and the ratio.
Pure numpy: no services needed.
Run: .venv/bin/python bench/agreement_release_bench.py   [N_IMAGES=1000000 N_BOOT=1000 N_REF=20000 REF=1]
(the "before" figure: run the same file with PYTHONPATH pointing at a checkout of the old code)
"""

from __future__ import annotations

import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.getcwd())  # the checkout this is run from (a worktree for "before" figures)


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_inputs(n_images: int, per_image: int = 3, n_raters: int = 20, n_emotions: int = 40,
                seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, rater ids, int16 values), sorted by image then rater like rating_rows."""
    rng = np.random.default_rng(seed)
    n = n_images * per_image
    units = np.repeat(np.arange(1, n_images + 1, dtype=np.int64), per_image)
    start = rng.integers(0, n_raters, size=n_images)
    raters = ((start[:, None] + np.arange(per_image)) % n_raters + 1000).astype(np.int64)
    raters.sort(axis=1)
    raters = raters.reshape(-1)
    values = np.empty((n, n_emotions), dtype=np.int16)
    step = 1 << 16
    for r0 in range(0, n, step):
        r1 = min(r0 + step, n)
        zero = rng.random((r1 - r0, n_emotions)) < 0.8
        values[r0:r1] = np.where(zero, 0, rng.integers(1, 8, size=(r1 - r0, n_emotions)))
    return units, raters, values


def main() -> None:
    from annotation import agreement as ag

    n_images = int(os.environ.get("N_IMAGES", "1000000"))
    n_boot = int(os.environ.get("N_BOOT", "1000"))
    n_ref = min(int(os.environ.get("N_REF", "20000")), n_images)
    units, raters, values = make_inputs(n_images)
    base = _rss_mib()
    assert _peak_mib() < base + 64, "building the inputs left a peak of its own"
    domain = ag.scale_domain(7)
    load = os.getloadavg()[0]
    c0 = time.process_time()
    t0 = time.perf_counter()
    report, mean, k = ag.agreement_report_with_mean(units, raters, values, level="interval", domain=domain,
                                                    n_boot=n_boot, seed=7)
    t_report = time.perf_counter() - t0
    peak_report = _peak_mib() - base
    t0 = time.perf_counter()
    every = ag.alpha_all(units, None, values, level="interval", domain=domain)
    t_all = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = _peak_mib() - base
    inputs = (units.nbytes + raters.nbytes + values.nbytes) / 2**20
    print(f"{values.shape[0]:,} ratings of {n_images:,} images x {values.shape[1]} emotions "
          f"(inputs {inputs:,.0f} MiB, {values.dtype}), n_boot {n_boot}")
    print(f"  agreement_report_with_mean {t_report:.2f} s (peak +{peak_report:,.0f} MiB), alpha_all {t_all:.2f} s; "
          f"together {t_report + t_all:.2f} s ({cpu:.1f} s of CPU over both cores; load average {load:.1f} at the "
          f"start), peak RSS +{peak:,.0f} MiB above the inputs")
    print(f"  mean alpha {mean.estimate:.6f} image ci [{mean.image.low:.6f}, {mean.image.high:.6f}] "
          f"two-way [{mean.two_way.low:.6f}, {mean.two_way.high:.6f}], k {k:.4f}; "
          f"alpha[0] {every[0].alpha:.6f}, ci[0] [{report[0].ci_low:.6f}, {report[0].ci_high:.6f}]")
    if os.environ.get("REF", "1") == "1":
        import krippendorff

        rows = n_ref * 3
        dense = np.full((20, n_ref, values.shape[1]), np.nan)
        dense[raters[:rows] - 1000, units[:rows] - 1] = values[:rows]
        t0 = time.perf_counter()
        for e in range(values.shape[1]):
            krippendorff.alpha(reliability_data=dense[:, :, e], level_of_measurement="interval",
                               value_domain=list(domain))
        t_ref = (time.perf_counter() - t0) * n_images / n_ref
        print(f"  reference: krippendorff package, alpha only (no intervals), {n_ref:,} images x 40 emotions, "
              f"scaled to {n_images:,}: {t_ref:.2f} s; ours with 1 + {n_boot} resamples, leave-one-out, zero "
              f"inflation and alpha_all: {t_report + t_all:.2f} s (ratio {t_ref / (t_report + t_all):.2f}x)")


if __name__ == "__main__":
    main()
