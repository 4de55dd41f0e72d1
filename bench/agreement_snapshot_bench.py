"""Agreement for 100,000 images x 3 ratings x 40 emotions, read from PostgreSQL.

Ours: selectors.rating_rows (binary COPY) + agreement.alpha_all, and the whole stored snapshot
(agreement_snapshot_create: alpha + 1,000-resample intervals, kappas, leave-one-out, strata).
Peer, same data, same run: the rows through the Django ORM + the krippendorff package, one
emotion at a time (the usual way). Goal: the snapshot read from PostgreSQL in under 3 s.
Run: make bench-agreement_snapshot_bench   [N_IMAGES=100000 N_BOOT=1000]
"""

from __future__ import annotations

import os
import time

from _setup import django_on_postgres, seed_ratings


def main() -> None:
    django_on_postgres()
    import krippendorff
    import numpy as np

    from annotation import agreement as ag
    from annotation import selectors
    from annotation.models import Project, Rating
    from annotation.services.agreement_snapshot import agreement_snapshot_create

    n_images = int(os.environ.get("N_IMAGES", "100000"))
    n_boot = int(os.environ.get("N_BOOT", "1000"))
    project = Project.objects.get(pk=seed_ratings(n_images, 3))
    domain = ag.scale_domain(7)

    t0 = time.perf_counter()
    rows = selectors.rating_rows(project)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = ag.alpha_all(rows.image_ids, rows.rater_ids, rows.values, level="interval", domain=domain)
    t_alpha = time.perf_counter() - t0

    t0 = time.perf_counter()
    snapshot = agreement_snapshot_create(project, n_boot=n_boot, seed=0)
    t_snapshot = time.perf_counter() - t0

    t0 = time.perf_counter()
    orm = list(Rating.objects.filter(project=project).values_list("image_id", "rater_id", "values"))
    image_index = {i: k for k, i in enumerate(sorted({r[0] for r in orm}))}
    rater_index = {r: k for k, r in enumerate(sorted({r[1] for r in orm}))}
    dense = np.full((len(rater_index), len(image_index), 40), np.nan)
    for image_id, rater_id, values in orm:
        dense[rater_index[rater_id], image_index[image_id]] = values
    t_peer_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    peer = [krippendorff.alpha(reliability_data=dense[:, :, e], level_of_measurement="interval",
                               value_domain=list(domain)) for e in range(40)]
    t_peer_alpha = time.perf_counter() - t0
    worst = max(abs(a.alpha - p) for a, p in zip(ours, peer, strict=True) if a.alpha is not None)

    print(f"{len(rows.image_ids):,} ratings of {n_images:,} images, 40 emotions, interval alpha")
    print(f"  ours: read {t_read:.2f} s + alpha {t_alpha:.3f} s = {t_read + t_alpha:.2f} s")
    print(f"  peer: ORM read {t_peer_read:.2f} s + krippendorff package {t_peer_alpha:.2f} s = "
          f"{t_peer_read + t_peer_alpha:.2f} s")
    print(f"  ratio: {(t_peer_read + t_peer_alpha) / (t_read + t_alpha):.1f}x; largest |alpha difference| {worst:.1e}")
    print(f"  whole snapshot (read + alpha + {n_boot}-resample intervals + kappas + leave-one-out + strata): "
          f"{t_snapshot:.2f} s (stored {snapshot.seconds:.2f} s compute)")


if __name__ == "__main__":
    main()
