"""A release of a big project (default 1,000,000 images x 3 ratings x 40 emotions) from PostgreSQL,
built chunk by chunk of images, beside the same release built in one chunk (#21 goal 3).

Set-up (not timed): seed the project (bench/_setup.py seed_ratings), fit the measurement model to
the ratings of its first 20,000 images and store the parameters with an agreement snapshot, so
the release freezes them (#18: soft labels without refitting), create the release.
Then each build runs in a child process of its own (a fresh interpreter), so its peak RSS
(os.wait4's ru_maxrss) is the build's alone: first chunked (EMORATE_RELEASE_CHUNK_IMAGES, default
20,000), then the reference, the same code with one chunk; the two builds' files are compared
(sha256 of every file). Goal: under 120 s and 1.5 GiB at a million images on 2 cores.

Run: .ci/with-services.sh .venv/bin/python bench/release_big_bench.py [--images N] [--chunk N] [--no-reference] [--keep] [--before CHECKOUT] [--repeat N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(release_id: int, chunk: int, media: str, out: str) -> None:
    """Build the release (in this fresh process) and write {seconds, stages, files} to `out`."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    from django.conf import settings

    from annotation.models import Release
    from annotation.services.releases import release_build, release_dir

    settings.MEDIA_ROOT = media
    settings.EMORATE_RELEASE_CHUNK_IMAGES = chunk
    if os.environ.get("EMORATE_BENCH_MALLOPT"):  # glibc's allocator tuned for big arrays (releases.py)
        settings.EMORATE_RELEASE_MALLOPT = True
    if os.environ.get("EMORATE_BENCH_NO_FORK"):  # --no-fork: the agreement in the build's own process
        settings.EMORATE_RELEASE_FORK = False
    import resource

    stages: list[tuple[float, str, float]] = []
    t0 = time.perf_counter()

    def progress(pct: int, stage: str) -> None:  # the peak so far: the stages before this one
        stages.append((time.perf_counter() - t0, stage, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))

    profile = os.environ.get("EMORATE_BENCH_PROFILE")  # a path: cProfile stats of the build go there
    if profile:
        import cProfile

        with cProfile.Profile() as prof:
            release = release_build(Release.objects.get(pk=release_id), progress=progress)
        prof.dump_stats(profile)
    else:
        release = release_build(Release.objects.get(pk=release_id), progress=progress)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the build's, before the hashing below
    folder = release_dir(release)
    files = {p.relative_to(folder).as_posix(): _sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    Path(out).write_text(json.dumps({"seconds": seconds, "stages": stages, "files": files, "peak": peak,
                                     "images": release.summary["images"], "raw": release.summary["raw_ratings"]}))


def _sha256_file(path: Path) -> str:
    """A file's sha256, read 8 MiB at a time (a million-image CSV is GiBs: never read whole)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 23):
            digest.update(chunk)
    return digest.hexdigest()


def _run_child(release_id: int, chunk: int, keep: bool = False, script: str = __file__,
               env: dict[str, str] | None = None) -> tuple[dict, float]:
    media = tempfile.mkdtemp(prefix="emorate-big-release-")
    out = tempfile.mktemp(suffix=".json")
    # run from the checkout's root: the editable install and Django otherwise import this tree's code
    proc = subprocess.Popen([sys.executable, script, "--child", str(release_id), str(chunk), media, out],
                            env={**os.environ, **(env or {})},
                            cwd=Path(script).resolve().parent.parent)
    from _setup import MemorySampler

    sampler = MemorySampler(proc.pid)
    proc_id, status = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT).si_pid, 0  # sampled until it exits
    sampler.stop()
    _pid, status, usage = os.wait4(proc_id, 0)
    if status != 0:
        sys.exit(f"the build (chunk {chunk}) failed with status {status}")
    result = json.loads(Path(out).read_text())
    result["pss"], result["rss_sum"] = sampler.pss, sampler.rss
    # CPU seconds of the build and its (waited-for) child processes, all threads: what the 2 cores
    # shared (wall times move with the machine's other load; this moves far less)
    result["cpu"] = usage.ru_utime + usage.ru_stime
    Path(out).unlink()
    if keep:
        print(f"  files kept in {media}")
    else:
        shutil.rmtree(media, ignore_errors=True)
    return result, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--no-reference", action="store_true", help="skip the one-chunk build")
    parser.add_argument("--keep", action="store_true", help="keep the release folders (printed)")
    parser.add_argument("--no-fork", action="store_true",
                        help="also build with the agreement in the build's own process (EMORATE_RELEASE_FORK off)")
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="also build the same release with the code of another checkout (e.g. a git worktree "
                             "of an earlier commit), in the same run: its stages, and whether its files are ours")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="build the chunked release N times (a range over runs on one seeded project)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(int(args.child[0]), int(args.child[1]), args.child[2], args.child[3])
        return

    sys.path.insert(0, str(ROOT / "bench"))
    from _setup import django_on_postgres, seed_check, seed_ratings

    django_on_postgres()
    import numpy as np

    from annotation import selectors
    from annotation.agreement import ratermodel as rm
    from annotation.models import AgreementSnapshot, Project, SnapshotStatus
    from annotation.services.rater_model import model_parameters
    from annotation.services.releases import release_create

    project = Project.objects.get(pk=seed_ratings(args.images, 3))
    assert seed_check(project.pk) == []
    t0 = time.perf_counter()
    first = next(selectors.rating_rows_chunks(project, chunk_images=20_000))
    fit = rm.fit_rater_model(first.image_ids, first.rater_ids, first.values.astype(np.float64), scale_max=7)
    params = model_parameters(fit, first)
    if params is None:
        sys.exit("the measurement model did not converge on the first 20,000 images")
    AgreementSnapshot.objects.create(project=project, fingerprint="bench", status=SnapshotStatus.DONE,
                                     payload={"rater_model": {"converged": True, "parameters": params}})
    release = release_create(project=project, version="1.0.0")
    assert release.inputs.get("rater_model"), "the release did not freeze the parameters"
    print(f"model fitted on 20,000 images and release created in {time.perf_counter() - t0:.1f} s (not timed)")

    runs = [("chunked", args.chunk, __file__)] + [(f"chunked #{i}", args.chunk, __file__) for i in range(2, args.repeat + 1)] \
        + ([] if args.no_reference else [("one chunk", 1 << 40, __file__)])
    if args.no_fork:
        runs.append(("no fork", args.chunk, __file__))
    if args.before:
        runs.append(("before", args.chunk, str(Path(args.before).resolve() / "bench" / "release_big_bench.py")))
    results = {}
    for name, chunk, script in runs:
        result, rss = _run_child(release.pk, chunk, args.keep, script,
                                 {"EMORATE_BENCH_NO_FORK": "1"} if name == "no fork" else None)
        results[name] = (result, rss)
        print(f"{name} (chunk {chunk if chunk < 1 << 40 else 'all'}): {result['seconds']:.1f} s, "
              f"peak RSS {rss:.0f} MiB (the build alone: {result.get('peak', rss):.0f} MiB), {result['images']:,} images, "
              f"{result['raw']:,} ratings, load average {os.getloadavg()[0]:.1f}")
        print(f"    with its child processes, sampled every 100 ms: peak of summed PSS {result['pss']:.0f} MiB, "
              f"of summed RSS {result['rss_sum']:.0f} MiB; CPU {result['cpu']:.1f} s (build and child, all threads)")
        stages = result["stages"]
        for (t_a, stage, _r), (t_b, _, peak) in zip(stages, stages[1:] + [[result["seconds"], "", rss]], strict=True):
            print(f"    {stage:<52} {t_b - t_a:7.2f} s   peak so far {peak:6.0f} MiB")
    for other in ("one chunk", "no fork", "before"):
        if other in results:
            (a, rss_a), (b, rss_b) = results["chunked"], results[other]
            print(f"  ratio {other} / chunked: time {b['seconds'] / a['seconds']:.2f}, peak RSS {rss_b / rss_a:.2f}, "
                  f"peak summed PSS {b['pss'] / a['pss']:.2f}, CPU {b['cpu'] / a['cpu']:.2f}")
            print(f"  files identical: {a['files'] == b['files']} ({len(a['files'])} files)"
                  + ("" if a["files"] == b["files"] else
                     f"; differ: {sorted(k for k in a['files'] if a['files'][k] != b['files'].get(k))}"))
    print("  goal at 1,000,000 images: under 120 s and 1,536 MiB")


if __name__ == "__main__":
    main()
