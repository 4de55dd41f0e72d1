"""The files of a synthetic release written straight through the exporters, no database (#21 goal 3).

A release of N images (default 1,000,000) x 3 ratings x 40 emotions with the measurement model's
soft labels, shaped like bench/_setup.py's seeded projects (about 80% zero ratings, 20 raters,
file names img<N>, four ethnicities, three genders, seven ages). Set-up (not timed): the ratings,
their consolidation (annotation.consolidation.consolidate_intensity) and random soft labels
rounded as the release rounds them.

Timed, in this one process (wall time, and the process's CPU time, which a busy machine disturbs less):
- ours: exporters.write_release of the whole folder, then stored_files.folder_store of that folder
  into a media folder on the same file system (a hard link per file), and with --s3 into a fresh
  bucket of the S3 server at AWS_S3_ENDPOINT_URL (SeaweedFS), beside the storage's own save file
  by file (the way before #21), the stored files checked against the local ones;
- per file kind (--detail): the per-split Parquet, CSV and JSONL and raw/ratings.parquet, each
  written on its own through the same writers (tables / text), in seconds and MiB/s;
- references from the same run: pyarrow's own pq.write_table of the same whole tables (the
  Parquet files), pyarrow.csv.write_csv of the train table (CSV with other quoting: a speed
  reference, not the same bytes), and `cp -r` of the written folder (storing by copying).

Run: .venv/bin/python bench/release_write_bench.py [--images N] [--detail] [--profile FILE] [--keep DIR]
     bash -c 'source .ci/services.sh; trap stop_services EXIT; start_s3; .venv/bin/python bench/release_write_bench.py --s3'

"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic(n: int, per_image: int = 3, n_raters: int = 20, seed: int = 1) -> dict[str, Any]:
    import numpy as np

    from annotation.consolidation import ConsolidationRule, consolidate_intensity
    from annotation.exporters import CardInfo, ImageRow
    from annotation.pgcopy import RatingRows

    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1, dtype=np.int64)
    pool = np.where(rng.random((4096, 40)) < 0.8, 0, rng.integers(1, 8, (4096, 40))).astype(np.int16)
    image_ids = np.repeat(ids, per_image)
    start = rng.integers(0, n_raters, n)
    rater_ids = 100 + (np.repeat(start, per_image) + np.tile(np.arange(per_image), n)) % n_raters
    values = pool[rng.integers(0, len(pool), n * per_image)]
    raw = RatingRows(image_ids=image_ids, rater_ids=rater_ids.astype(np.int64), values=values)
    labels = consolidate_intensity(image_ids, values, rule=ConsolidationRule(), scale_max=7)
    m = labels.image_ids.size
    p = np.round(rng.random((m, 40)), 4)
    ei = np.round(1 + 6 * rng.random((m, 40)), 4)
    labels = dataclasses.replace(labels, p_present=p, expected_intensity=ei, soft_sd=np.round(rng.random((m, 40)) * 2, 4))
    sha = [f"{int(a):032x}{int(b):032x}" for a, b in zip(rng.integers(0, 2**63, n, dtype=np.int64),
                                                        rng.integers(0, 2**63, n, dtype=np.int64), strict=True)]
    images = [ImageRow(image_id=int(i), file_name=f"img{i}.jpg", sha256=sha[i - 1], ethnicity="ABCD"[i % 4],
                       gender=("man", "woman", "non-binary person")[i % 3], age=20 + 10 * (i % 7), prompt="")
              for i in ids.tolist()]
    u = rng.random(n)
    assignment = {im.sha256: ("train" if x < 0.8 else "validation" if x < 0.9 else "test")
                  for im, x in zip(images, u.tolist(), strict=True)}
    card = CardInfo(pretty_name="bench", version="1.0", released="2026-12-06")
    return {"images": images, "labels": labels, "raw": raw, "assignment": assignment, "balance": {},
            "agreement": {}, "card": card, "config": {"split": None}, "pseudonym_key": b"k" * 32, "scale_max": 7,
            "allocation": ["coverage"] * (n * per_image)}


def _s3_storage() -> Any:
    """A fresh bucket on the S3 server of AWS_S3_ENDPOINT_URL (SeaweedFS: .ci/services.sh start_s3),
    with the settings' S3 options."""
    import boto3
    from botocore.config import Config

    from core.storage import PrivateS3Storage

    endpoint = os.environ["AWS_S3_ENDPOINT_URL"]
    keys = {"aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY")}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}), **keys)
    bucket = f"writebench-{os.getpid()}"
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=bucket)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return PrivateS3Storage(bucket_name=bucket, endpoint_url=endpoint, access_key=keys["aws_access_key_id"],
                            secret_key=keys["aws_secret_access_key"], region_name="us-east-1",
                            addressing_style="path", signature_version="s3v4", default_acl=None,
                            file_overwrite=False, use_threads=False)


def _mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def detail(inputs: dict[str, Any], scratch: Path) -> None:
    """Each file kind written on its own through the writers, beside pyarrow's own writes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from annotation.exporters import PARQUET_OPTIONS
    from annotation.exporters.release import _FileSink
    from annotation.exporters.tables import image_plan, image_table_slice, raw_plan, raw_table_slice
    from annotation.exporters.text import _csv_chunks, _jsonl_chunks, _segments

    rg = PARQUET_OPTIONS["row_group_size"]
    plan = image_plan(inputs["images"], inputs["labels"], inputs["assignment"])
    split_of = np.asarray(plan.split, dtype=object)[plan.order]
    rows = plan.order[split_of == "train"]
    t = time.perf_counter()
    parts = [image_table_slice(plan, rows[lo:lo + rg]) for lo in range(0, rows.size, rg)]
    t_slice = time.perf_counter() - t
    print(f"  train table slices ({rows.size} rows): {t_slice:.2f} s")
    t = time.perf_counter()
    segs = [_segments(p) for p in parts]
    print(f"  text segments: {time.perf_counter() - t:.2f} s")
    for kind in ("parquet", "csv", "jsonl"):
        out = scratch / f"d-{kind}"
        sink = _FileSink(out)
        sink.open("f")
        t = time.perf_counter()
        for i, (part, seg) in enumerate(zip(parts, segs, strict=True)):
            if kind == "parquet":
                sink.table("f", part)
            else:
                chunks = iter((_csv_chunks if kind == "csv" else _jsonl_chunks)(part, seg))
                if i and kind == "csv":
                    next(chunks)
                for c in chunks:
                    sink.data("f", c)
        sink.close("f")
        sink.finish()
        s = time.perf_counter() - t
        size = (out / "f").stat().st_size / 2**20
        print(f"  ours train {kind:8s} {s:6.2f} s  {size:8.1f} MiB  {size / s:7.1f} MiB/s")
    whole = pa.concat_tables(parts)
    t = time.perf_counter()
    pq.write_table(whole, scratch / "ref.parquet", **PARQUET_OPTIONS)
    s = time.perf_counter() - t
    print(f"  ref  pq.write_table train       {s:6.2f} s")
    t = time.perf_counter()
    pacsv.write_csv(whole, scratch / "ref.csv")
    s = time.perf_counter() - t
    print(f"  ref  pyarrow.csv.write_csv train {s:6.2f} s  {(scratch / 'ref.csv').stat().st_size / 2**20:8.1f} MiB")
    del whole, parts, segs
    t = time.perf_counter()
    rp = raw_plan(inputs["raw"], inputs["images"], inputs["assignment"], pseudonym_key=inputs["pseudonym_key"],
                  allocation=inputs["allocation"])
    print(f"  raw plan: {time.perf_counter() - t:.2f} s")
    sink = _FileSink(scratch / "d-raw")
    sink.open("f")
    t = time.perf_counter()
    for lo in range(0, rp.num_rows, rg):
        sink.table("f", raw_table_slice(rp, lo, min(lo + rg, rp.num_rows)))
    sink.close("f")
    sink.finish()
    s = time.perf_counter() - t
    print(f"  ours raw/ratings.parquet        {s:6.2f} s  {(scratch / 'd-raw' / 'f').stat().st_size / 2**20:8.1f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=1_000_000)
    ap.add_argument("--detail", action="store_true", help="also each file kind on its own, beside pyarrow")
    ap.add_argument("--profile", help="cProfile the write and store into this file")
    ap.add_argument("--keep", help="move the written folder here (to compare sha256 with another build)")
    ap.add_argument("--s3", action="store_true", help="also store into the S3 storage (with-services)")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one under /tmp)")
    args = ap.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.core.files import File
    from django.core.files.storage import FileSystemStorage

    from annotation import exporters
    from annotation.services import stored_files

    t = time.perf_counter()
    inputs = synthetic(args.images)
    print(f"{args.images} images: set-up {time.perf_counter() - t:.1f} s (not timed)")
    scratch = Path(tempfile.mkdtemp(prefix="emorate-writebench-", dir=args.dir))
    prof = cProfile.Profile() if args.profile else None
    try:
        if prof:
            prof.enable()
        t, cpu = time.perf_counter(), time.process_time()
        exporters.write_release(scratch / "files", **inputs)
        t_write, cpu = time.perf_counter() - t, time.process_time() - cpu
        size = _mib(scratch / "files")
        print(f"ours write_release        {t_write:7.2f} s  {size:8.1f} MiB  {size / t_write:7.1f} MiB/s  "
              f"CPU {cpu:.2f} s (both threads; steadier than wall time on a busy machine)")
        t = time.perf_counter()
        subprocess.run(["cp", "-r", str(scratch / "files"), str(scratch / "copy")], check=True)
        t_cp = time.perf_counter() - t
        print(f"ref  cp -r of the folder  {t_cp:7.2f} s")
        media = scratch / "media"
        media.mkdir()
        old = stored_files.media_storage
        stored_files.media_storage = lambda: FileSystemStorage(location=str(media))
        try:
            t = time.perf_counter()
            stored_files.folder_store(scratch / "copy", "releases/p/1.0")
            t_store = time.perf_counter() - t
        finally:
            stored_files.media_storage = old
        print(f"ours folder_store (local) {t_store:7.2f} s  (cp -r: {t_cp / t_store:.1f}x our time)")
        if args.s3:
            s3 = _s3_storage()
            stored_files.media_storage = lambda: s3
            try:
                t = time.perf_counter()
                for path in sorted(p for p in (scratch / "files").rglob("*") if p.is_file()):
                    with path.open("rb") as fh:  # the way before #21: the storage's save, file by file
                        stored_files._put(f"ref/{path.relative_to(scratch / 'files').as_posix()}", File(fh), s3)
                t_ref = time.perf_counter() - t
                print(f"ref  storage.save per file (S3) {t_ref:7.2f} s  {size / t_ref:7.1f} MiB/s")
                t = time.perf_counter()
                stored_files.folder_store(scratch / "files", "releases/p/1.0")
                t_s3 = time.perf_counter() - t
                print(f"ours folder_store (S3)    {t_s3:7.2f} s  {size / t_s3:7.1f} MiB/s  ({t_ref / t_s3:.1f}x faster)")
                ours = {rel: stored_files.file_sha256(f"releases/p/1.0/{rel}")[0]
                        for rel in stored_files.folder_files("releases/p/1.0")}
                local = {p.relative_to(scratch / "files").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in (scratch / "files").rglob("*") if p.is_file()}
                assert ours == local, "stored files differ"
                stored_files.folder_delete("releases/p/1.0")
                stored_files.folder_delete("ref")
            finally:
                stored_files.media_storage = old
        if prof:
            prof.disable()
            prof.dump_stats(args.profile)
        if args.detail:
            detail(inputs, scratch)
        if args.keep:
            shutil.move(str(scratch / "files"), args.keep)
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (set-up included)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
