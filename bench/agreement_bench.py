"""Benchmark of annotation.agreement against the krippendorff package (0.9.0) on the same data.

Run from the repository root:  python bench/agreement_bench.py [--quick]

Scenario A: 2,500 images x 4 ratings x 40 emotions on 0..7 (about 80% zeros, 20 raters, each
image rated by 4 of them at random): alpha + 1,000-resample bootstrap intervals for all 40
emotions. The package has no bootstrap, so its bootstrap cost is an EXTRAPOLATION: the measured
time of one alpha call per emotion times 1,000 resamples (resampling overhead not included,
which flatters the package).

Scenario B: 100,000 images x 3 ratings x 40 emotions: alpha for all 40 emotions, with peak
memory of the call (tracemalloc; numpy reports its buffers to it) and the process peak RSS.

Scenario C: the full snapshot compute on B's data: agreement_report (B=1000), pairwise kappas,
leave-one-out rater agreement and alpha_by_stratum for 3 keys (5, 3 and 4 strata, B=1000),
timed as one snapshot_stats call and as the separate calls. The target is under 2 s: the whole
snapshot, including about 0.8 s of PostgreSQL reads, must take under 3 s on a 2-core machine.

Times are wall-clock seconds on this machine; "ours" is the median of several repeats.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import krippendorff
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotation import agreement  # noqa: E402

SCALE_MAX = 7
DOMAIN = list(range(SCALE_MAX + 1))


def make_data(
    n_images: int, per_image: int, n_raters: int, n_emotions: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-inflated long table: latent intensity per (image, emotion) plus rater noise."""
    rng = np.random.default_rng(seed)
    # each image gets `per_image` distinct raters drawn at random from the pool
    keys = rng.random((n_images, n_raters))
    raters = np.argsort(keys, axis=1)[:, :per_image].ravel()
    units = np.repeat(np.arange(n_images), per_image)
    present = rng.random((n_images, n_emotions)) < 0.22
    latent = rng.integers(1, SCALE_MAX + 1, size=(n_images, n_emotions))
    lat = np.where(present, latent, 0)[units]
    noisy = np.rint(lat + rng.normal(0.0, 1.3, size=lat.shape))
    seen = rng.random(lat.shape) < np.where(lat > 0, 0.75, 0.04)
    values = np.where(seen, np.clip(noisy, 1, SCALE_MAX), 0).astype(np.float64)
    return units, raters, values


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, best) wall seconds over `repeats` calls, after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts)


def reliability_matrix(units: np.ndarray, raters: np.ndarray, col: np.ndarray) -> np.ndarray:
    """The dense raters x images matrix the package needs (built outside its timing)."""
    m = np.full((int(raters.max()) + 1, int(units.max()) + 1), np.nan)
    m[raters, units] = col
    return m


def package_alpha_seconds(
    units: np.ndarray, raters: np.ndarray, values: np.ndarray, emotions: range
) -> tuple[float, list[float]]:
    mats = [reliability_matrix(units, raters, values[:, e]) for e in emotions]
    out = []
    t0 = time.perf_counter()
    for m in mats:
        out.append(
            float(
                krippendorff.alpha(reliability_data=m, level_of_measurement="interval", value_domain=DOMAIN)
            )
        )
    return time.perf_counter() - t0, out


def scenario_a(repeats: int) -> None:
    print("== Scenario A: 2,500 images x 4 ratings x 40 emotions, 0..7, 20 raters ==")
    units, raters, values = make_data(2500, 4, 20, 40, seed=1)
    print(f"   ratings: {units.size:,}; zeros: {np.mean(values == 0):.1%}")

    def ours() -> None:
        agreement.alpha_all(units, raters, values, level="interval", domain=DOMAIN)
        agreement.bootstrap_ci(units, values, level="interval", domain=DOMAIN, n_boot=1000, seed=0)

    def ours_report() -> None:
        agreement.agreement_report(units, raters, values, level="interval", domain=DOMAIN, n_boot=1000)

    med, best = timed(ours, repeats)
    med_r, best_r = timed(ours_report, repeats)
    pk_alpha, pk_vals = package_alpha_seconds(units, raters, values, range(40))
    ours_vals = [r.alpha for r in agreement.alpha_all(units, raters, values, domain=DOMAIN)]
    maxdiff = max(abs(a - b) for a, b in zip(ours_vals, pk_vals, strict=True) if a is not None)
    pk_boot = pk_alpha * 1000
    print(f"   ours: alpha_all + bootstrap_ci(B=1000)      median {med:.3f} s  (best {best:.3f} s)")
    print(f"   ours: agreement_report (same, one pass)     median {med_r:.3f} s  (best {best_r:.3f} s)")
    print(f"   package: alpha for 40 emotions (measured)   {pk_alpha:.3f} s")
    print(
        f"   package: alpha + 1,000 resamples            {pk_alpha + pk_boot:.1f} s  (EXTRAPOLATED: measured x 1001)"
    )
    print(f"   ratio package/ours (report)                 {(pk_alpha + pk_boot) / med_r:,.0f}x")
    print(f"   max |alpha ours - package| over 40 emotions {maxdiff:.2e}")
    ok = med_r < 0.3
    print(f"   target < 0.3 s: {'PASS' if ok else 'MISS'}")


def scenario_b(repeats: int, package_emotions: int) -> None:
    print("== Scenario B: 100,000 images x 3 ratings x 40 emotions, 0..7, 20 raters ==")
    units, raters, values = make_data(100_000, 3, 20, 40, seed=2)
    print(f"   ratings: {units.size:,}; input values2d: {values.nbytes / 2**20:.0f} MiB")

    def ours() -> None:
        agreement.alpha_all(units, raters, values, level="interval", domain=DOMAIN)

    med, best = timed(ours, repeats)
    tracemalloc.start()
    agreement.alpha_all(units, raters, values, level="interval", domain=DOMAIN)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    emos = range(package_emotions)
    pk_t, pk_vals = package_alpha_seconds(units, raters, values, emos)
    pk_40 = pk_t * 40 / package_emotions
    ours_vals = [r.alpha for r in agreement.alpha_all(units, raters, values, domain=DOMAIN)]
    maxdiff = max(abs(a - pk_vals[i]) for i, e in enumerate(emos) if (a := ours_vals[e]) is not None)
    note = "measured" if package_emotions == 40 else f"measured on {package_emotions}, scaled to 40"
    print(f"   ours: alpha_all (40 emotions)               median {med:.3f} s  (best {best:.3f} s)")
    print(f"   package: alpha for 40 emotions              {pk_40:.2f} s  ({note})")
    print(f"   ratio package/ours                          {pk_40 / med:,.0f}x")
    print(f"   max |alpha ours - package|                  {maxdiff:.2e}")
    print(f"   ours: peak memory of the call (tracemalloc) {peak / 2**20:.0f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"   process peak RSS so far (incl. input, package runs) {rss:.0f} MiB")
    ok = med < 0.1 and pk_40 / med >= 30 and peak < 300 * 2**20
    print(f"   targets < 0.1 s, >= 30x, < 300 MB: {'PASS' if ok else 'MISS'}")

    levels: tuple[agreement.Level, ...] = ("nominal", "ordinal", "ratio")
    for level in levels:

        def run(lv: agreement.Level = level) -> None:
            agreement.alpha_all(units, raters, values, level=lv, domain=DOMAIN)

        m, _ = timed(run, 1)
        print(f"   (info) ours: alpha_all level={level:<8}       {m:.3f} s")


def scenario_c(repeats: int) -> None:
    print("== Scenario C: full snapshot compute on B (report + kappas + raters + 3 strata keys) ==")
    units, raters, values = make_data(100_000, 3, 20, 40, seed=2)
    rng = np.random.default_rng(3)
    n_img = int(units.max()) + 1
    per_image = {
        "ethnicity": np.array(list("ABCDE"))[rng.integers(0, 5, n_img)],
        "gender": np.array(["f", "m", "x"])[rng.integers(0, 3, n_img)],
        "age": np.array(["18-29", "30-44", "45-59", "60+"])[rng.integers(0, 4, n_img)],
    }
    strata = {k: v[units] for k, v in per_image.items()}

    def snapshot() -> None:
        agreement.snapshot_stats(units, raters, values, strata, level="interval", domain=DOMAIN, n_boot=1000)

    parts: dict[str, Callable[[], object]] = {
        "agreement_report(B=1000)": lambda: agreement.agreement_report(
            units, raters, values, level="interval", domain=DOMAIN, n_boot=1000
        ),
        "pairwise_kappas": lambda: agreement.pairwise_kappas(units, raters, values, domain=DOMAIN),
        "rater_agreement(kappas given)": lambda: agreement.rater_agreement(
            units, raters, values, domain=DOMAIN, kappas=kappas
        ),
    }
    kappas = agreement.pairwise_kappas(units, raters, values, domain=DOMAIN)

    def by_stratum(labels: np.ndarray) -> Callable[[], object]:
        return lambda: agreement.alpha_by_stratum(
            units, values, labels, level="interval", domain=DOMAIN, n_boot=1000
        )

    for key, labels in strata.items():
        parts[f"alpha_by_stratum({key}, B=1000)"] = by_stratum(labels)
    total = 0.0
    for name, fn in parts.items():
        m, _ = timed(fn, max(1, repeats // 2))
        total += m
        print(f"   ours: {name:<36} median {m:.3f} s")
    print(f"   ours: sum of the separate calls              {total:.3f} s")
    med, best = timed(snapshot, repeats)
    print(f"   ours: snapshot_stats (one call, shared work)  median {med:.3f} s  (best {best:.3f} s)")
    print(f"   target < 2 s: {'PASS' if med < 2.0 else 'MISS'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, package on 5 emotions in B")
    args = ap.parse_args()
    repeats = 3 if args.quick else 7
    print(f"python {platform.python_version()}, numpy {np.__version__}, krippendorff 0.9.0 package")
    scenario_a(repeats)
    scenario_b(repeats, 5 if args.quick else 40)
    scenario_c(3 if args.quick else 5)


if __name__ == "__main__":
    main()
