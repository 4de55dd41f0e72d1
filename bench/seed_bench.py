"""Seeding the benchmarks' projects (issue #21: a project of 1,000,000 images in under two minutes).

Ours: `_setup.seed_ratings` as every database benchmark calls it (rows by INSERT ... SELECT inside
PostgreSQL; the secondary indexes, unique constraints and foreign keys made after the rows; then
VACUUM ANALYZE, the state autovacuum leaves a project in).
Reference, same run, same database: the same statements with every index and key kept in place
(`build_after=False`: each row checked and indexed on its own). Both projects are then checked
against what the triggers would have kept (`seed_check`), and the tables emptied before the
next seeding.
Run: make bench-seed_bench   [--images 1000000] [--per-image 3] [--no-reference]
"""

from __future__ import annotations

import argparse
import time

from _setup import django_on_postgres, seed_check, seed_ratings

GOAL_S = 120.0


def timed_seed(n_images: int, per_image: int, seed: int, build_after: bool) -> float:
    t0 = time.perf_counter()
    project = seed_ratings(n_images, per_image, seed=seed, build_after=build_after)
    elapsed = time.perf_counter() - t0
    problems = seed_check(project)
    if problems:
        raise SystemExit(f"seeded project {project} is wrong: {'; '.join(problems)}")
    from django.db import connection

    with connection.cursor() as cur:  # the next seeding starts from empty tables too
        cur.execute("TRUNCATE annotation_rating, annotation_image, annotation_ratertally, annotation_imagetally CASCADE")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--per-image", type=int, default=3)
    ap.add_argument("--no-reference", action="store_true", help="skip the keys-in-place reference")
    args = ap.parse_args()
    django_on_postgres()
    ours = timed_seed(args.images, args.per_image, 1, True)
    print(f"ours: {args.images:,} images x {args.per_image} ratings seeded in {ours:.1f} s "
          f"(goal < {GOAL_S:.0f} s: {'met' if ours < GOAL_S else 'NOT met'})")
    if not args.no_reference:
        ref = timed_seed(args.images, args.per_image, 2, False)
        print(f"reference (indexes and keys in place), same database: {ref:.1f} s; ratio {ref / ours:.2f}x")


if __name__ == "__main__":
    main()
