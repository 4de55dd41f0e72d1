"""How fast the agreement engine's input comes out of PostgreSQL.

Ours: annotation.selectors.rating_rows (binary COPY parsed by numpy).
Peer: the same rows through the ORM (values_list, psycopg2 row fetch), the usual Django way.
Run: make bench-ratings_read_bench   [N_IMAGES=100000]
"""

from __future__ import annotations

import os
import time
import tracemalloc

from _setup import django_on_postgres, seed_ratings


def main() -> None:
    django_on_postgres()
    import numpy as np

    from annotation import selectors
    from annotation.models import Project, Rating

    n_images = int(os.environ.get("N_IMAGES", "100000"))
    project = Project.objects.get(pk=seed_ratings(n_images, 3))

    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        rows = selectors.rating_rows(project)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    selectors.rating_rows(project)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    t0 = time.perf_counter()
    orm = list(Rating.objects.filter(project=project).order_by("image_id", "rater_id")
               .values_list("image_id", "rater_id", "values"))
    orm_values = np.array([r[2] for r in orm], dtype=np.int16)
    peer = time.perf_counter() - t0
    assert np.array_equal(orm_values, rows.values), "the two readers disagree"
    n = len(rows.image_ids)
    print(f"ratings read: {n:,} ratings x 40 emotions = {n * 40:,} values")
    print(f"  ours (binary COPY + numpy): {best:.3f} s   peak Python memory {peak:.0f} MiB")
    print(f"  peer (Django ORM values_list): {peer:.3f} s")
    print(f"  ratio: ours is {peer / best:.1f}x faster")


if __name__ == "__main__":
    main()
