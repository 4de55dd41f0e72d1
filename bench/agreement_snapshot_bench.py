"""Agreement for 100,000 images x 3 ratings x 40 emotions, read from PostgreSQL.

Ours: selectors.rating_rows (binary COPY) + agreement.alpha_all, and the whole stored snapshot
(agreement_snapshot_create: alpha + 1,000-resample intervals, kappas, leave-one-out, strata).
Peer, same data, same run: the rows through the Django ORM + the krippendorff package, one
emotion at a time (the usual way). Goal: the snapshot read from PostgreSQL in under 3 s.
With a model (MODEL=1, the default; #17): scores for every image are added and the snapshot is
taken again, so its per-model figures (alt-test, Spearman and its ceiling, split-half panels, the
alignment difference with its image bootstrap + expert jackknife) are timed beside the snapshot
without a model from the same run.
Run: make bench-agreement_snapshot_bench   [N_IMAGES=100000 N_BOOT=1000 MODEL=1 REPS=1 PEER=1]
(REPS=3: the snapshot three times, other seeds; PEER=0: without the peer and the model, with the
process's peak RSS.)
"""

from __future__ import annotations

import os
import time

import numpy as np
from _setup import MemorySampler, django_on_postgres, seed_ratings


def main() -> None:
    django_on_postgres()
    import krippendorff

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

    import resource

    def cpu_s() -> float:
        """CPU seconds of this process (all its threads) and of its reaped children (the snapshot's
        forked workers); PostgreSQL's backends are not counted. On a shared machine the wall time
        moves with the others' load, this much less."""
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    sampler = MemorySampler(os.getpid())  # this process with its forked workers, every 100 ms
    c0 = cpu_s()
    t0 = time.perf_counter()
    snapshot = agreement_snapshot_create(project, n_boot=n_boot, seed=0)
    t_snapshot = time.perf_counter() - t0
    # REPS=3: the whole snapshot again with other seeds (a stored snapshot would be returned as is)
    runs = [t_snapshot]
    cpus = [cpu_s() - c0]
    for rep in range(1, int(os.environ.get("REPS", "1"))):
        c0 = cpu_s()
        t0 = time.perf_counter()
        agreement_snapshot_create(project, n_boot=n_boot, seed=100 + rep)
        runs.append(time.perf_counter() - t0)
        cpus.append(cpu_s() - c0)
    pss_mib, rss_sum_mib = sampler.stop()

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if os.environ.get("PEER", "1") == "0":  # the snapshot's figures only
        print(f"{len(rows.image_ids):,} ratings of {n_images:,} images, 40 emotions; read {t_read:.2f} s, "
              f"alpha {t_alpha:.3f} s")
        print(f"  whole snapshot ({n_boot}-resample intervals): {', '.join(f'{t:.2f}' for t in runs)} s "
              f"(median {sorted(runs)[len(runs) // 2]:.2f} s); this process's peak RSS {peak_mib:,.0f} MiB; "
              f"with its forked workers, sampled every 100 ms: peak of summed PSS {pss_mib:,.0f} MiB "
              f"(summed RSS {rss_sum_mib:,.0f} MiB)")
        print(f"  CPU of this process and its forked workers (PostgreSQL not counted): "
              f"{', '.join(f'{c:.2f}' for c in cpus)} s (median {sorted(cpus)[len(cpus) // 2]:.2f} s)")
        print(f"  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return

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
    if os.environ.get("MODEL", "1") == "1":
        _with_model(project, rows, n_boot, t_snapshot)


def _with_model(project, rows, n_boot: int, t_snapshot: float) -> None:  # type: ignore[no-untyped-def]
    """#17's per-model figures: timed alone and inside a second snapshot, beside the first."""
    from django.db import connection

    from annotation.scoring import priority as prio
    from annotation.scoring.model_agreement import alignment_difference, to_scale
    from annotation.scoring.selectors import model_score_matrix, model_summary
    from annotation.services.agreement_snapshot import agreement_snapshot_create

    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.5)")
        cur.execute(
            "INSERT INTO annotation_modelscore (project_id, image_id, model_name, model_version, scores, "
            "taxonomy_version, created_at) SELECT %s, i.id, 'bench-model', 'v1', "
            "ARRAY(SELECT CASE WHEN random() < 0.75 THEN random() ELSE 1 + random() * 6 END "
            "      FROM generate_series(1, 40) e WHERE e > 0 * i.id)::float8[], 'emonet-face-1', now() "
            "FROM annotation_image i WHERE i.project_id = %s", [project.pk, project.pk])
    t0 = time.perf_counter()
    summary = model_summary(project, "bench-model", "v1", rows=rows, n_boot=n_boot, seed=0)
    t_summary = time.perf_counter() - t0
    assert summary is not None
    matrix = model_score_matrix(project, "bench-model", "v1")
    held = matrix.image_ids[prio.model_independent(matrix.image_ids, 0.2)]
    keep = np.isin(rows.image_ids, held)
    t0 = time.perf_counter()
    alignment_difference(rows.image_ids[keep], rows.rater_ids[keep], rows.values[keep], matrix.image_ids,
                         to_scale(matrix.scores, scale_max=7, model_scale_max=7.0), n_boot=n_boot, seed=0)
    t_align = time.perf_counter() - t0
    t0 = time.perf_counter()
    agreement_snapshot_create(project, n_boot=n_boot, seed=1)
    t_model_snapshot = time.perf_counter() - t0
    a = summary["alignment"]
    print(f"  with a model scoring every image ({summary['evaluated_images']:,} in the model-independent sample):")
    print(f"    model summary alone (alt-test, Spearman + ceiling, split-half, alignment): {t_summary:.2f} s, "
          f"of which the alignment difference with {n_boot} resamples + expert jackknife {t_align:.2f} s "
          f"(estimate {a['estimate']}, ci_raters {a['ci_raters']})")
    print(f"    whole snapshot with the model {t_model_snapshot:.2f} s vs {t_snapshot:.2f} s without "
          f"(ratio {t_model_snapshot / t_snapshot:.2f})")


if __name__ == "__main__":
    main()
