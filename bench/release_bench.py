"""Build a release of 100,000 images x 3 ratings x 40 emotions from PostgreSQL.

Ours: release_create + release_build (consolidation, sticky stratified splits, agreement with
1,000-resample intervals, Parquet/CSV/JSONL per split, raw ratings, card, manifest).
Peer, same data, same run: the common way, the ratings through the Django ORM into pandas,
groupby-median per image and emotion, a random 80/10/10 split, Parquet + CSV per split (no
agreement, no stratification, no card). Goal: ours under 20 s on a 2-core machine.
The release's soft labels come from the measurement model's parameters stored with the latest
agreement snapshot (#18): the snapshot and the model fit are made first, outside the timing
(REFIT=1: no snapshot, so the build fits the model to the release's ratings, as before #18).
Run: make bench-release_bench   [N_IMAGES=100000] [REFIT=1]
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from _setup import django_on_postgres, seed_ratings


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peer_export(project_id: int, out: Path) -> None:
    import numpy as np
    import pandas as pd

    from annotation.models import Image, Rating
    from annotation.taxonomy import EMOTIONS

    rows = list(Rating.objects.filter(project_id=project_id).values_list("image_id", "rater_id", "values"))
    frame = pd.DataFrame(np.array([r[2] for r in rows]), columns=list(EMOTIONS))
    frame["image_id"] = [r[0] for r in rows]
    labels = frame.groupby("image_id").median()
    meta = pd.DataFrame(list(Image.objects.filter(project_id=project_id).values("id", "name", "sha256", "ethnicity",
                                                                                "gender", "age"))).set_index("id")
    table = meta.join(labels, how="inner")
    rng = np.random.default_rng(0)
    table["split"] = rng.choice(["train", "validation", "test"], size=len(table), p=[0.8, 0.1, 0.1])
    for split, part in table.groupby("split"):
        part.to_parquet(out / f"{split}.parquet")
        part.to_csv(out / f"{split}.csv")


def main() -> None:
    django_on_postgres()
    from django.conf import settings

    from annotation.models import Project
    from annotation.services.releases import release_build, release_create

    n_images = int(os.environ.get("N_IMAGES", "100000"))
    project = Project.objects.get(pk=seed_ratings(n_images, 3))
    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="emorate-release-bench-")
    if os.environ.get("REFIT") != "1":
        from annotation.services.agreement_snapshot import agreement_snapshot_create
        from annotation.services.rater_model import rater_model_attach

        t0 = time.perf_counter()
        snapshot = agreement_snapshot_create(project, n_boot=0)
        rater_model_attach(snapshot.pk)
        print(f"snapshot and measurement model fitted in {time.perf_counter() - t0:.1f} s (not timed below)")

    stages: list[tuple[float, str]] = []
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    release = release_create(project=project, version="1.0.0")
    release = release_build(release, progress=lambda pct, stage: stages.append((time.perf_counter() - t0, stage)))
    ours = time.perf_counter() - t0
    rss_ours = peak_rss_mib()

    out = Path(tempfile.mkdtemp(prefix="emorate-peer-"))
    t0 = time.perf_counter()
    peer_export(project.pk, out)
    peer = time.perf_counter() - t0

    model = (release.inputs.get("rater_model") or {})
    print("soft labels: " + (f"parameters frozen from snapshot {model['snapshot_id']}" if model
                             else "the model fitted to the release's ratings"))
    print(f"release of {release.summary['images']:,} images, {release.summary['raw_ratings']:,} ratings x 40 emotions")
    for (t_a, stage), (t_b, _) in zip(stages, stages[1:] + [(ours, "")], strict=True):
        print(f"    {stage:<34} {t_b - t_a:6.2f} s")
    print(f"  ours: {ours:.1f} s, peak RSS {rss_ours:.0f} MiB (process, was {rss0:.0f} MiB before the build)")
    print(f"  peer (ORM + pandas median + random split, Parquet+CSV): {peer:.1f} s")
    print(f"  ratio peer/ours: {peer / ours:.2f}  (goal: ours under 20 s)")


if __name__ == "__main__":
    main()
