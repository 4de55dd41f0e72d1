"""import_images of 1024x1024 JPEG faces into an S3 bucket (a real SeaweedFS on loopback).

Ours: `import_images --workers 8` into the bucket (decode, metadata-stripped served copy, two
uploads and the row per image). Also the ceiling: the same two uploads per image alone, from 8
threads, with no decoding or database work (SeaweedFS and boto3 share the cores with everything). Reference, same run: today's path before object storage, one image
at a time onto the local disk (the ~220 images/s figure of issue #21). Also shown: the bucket one at
a time, and the local disk with 8 workers. Goal: at least 200 images/s into the bucket on 2 cores.
Run: make bench-import_bench   [N_IMAGES=2000]   (the faces are made once, under bench/out/)
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, django_on_postgres

OUT = ROOT / "bench" / "out"


def faces(n: int) -> Path:
    """n distinct 1024x1024 face JPEGs (quality 90, about 100-200 KB each), made once and kept."""
    folder = OUT / f"faces-1024-{n}"
    if folder.exists() and len(list(folder.glob("*.jpg"))) == n:
        return folder
    import numpy as np
    from PIL import Image

    from annotation import demo_faces

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(0)
    bases = [demo_faces.draw_face(demo_faces.random_spec(rng), 384).resize((1024, 1024), Image.BICUBIC)
             for _ in range(40)]
    noise_rng = np.random.default_rng(0)
    for i in range(n):
        pixels = np.asarray(bases[i % len(bases)], dtype=np.int16)
        pixels = pixels + noise_rng.integers(-6, 7, size=pixels.shape, dtype=np.int16)  # skin and sensor texture
        buf = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
        (folder / f"face-{i:05d}.jpg").write_bytes(buf.getvalue())
    return folder


def free_port_pair() -> int:
    import socket

    while True:
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            if port < 55000:
                with socket.socket() as b:
                    try:
                        b.bind(("127.0.0.1", port + 10000))
                        return port
                    except OSError:
                        continue


def start_seaweedfs(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    weed = Path(sys.executable).parent / "weed"
    s3 = free_port_pair()
    proc = subprocess.Popen([str(weed), "server", f"-dir={workdir}", "-s3", f"-s3.port={s3}",
                             f"-master.port={free_port_pair()}", f"-volume.port={free_port_pair()}",
                             f"-filer.port={free_port_pair()}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                             "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=512"],
                            stdout=open(workdir.parent / "weed.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    return proc, f"http://127.0.0.1:{s3}"


def timed_import(folder: Path, slug: str, workers: int, *, again: bool = False) -> float:
    """Images (or, with `again`, already imported files) per second into the project `slug`."""
    from annotation.models import Project
    from annotation.services.image_import import images_import

    project = Project.objects.get(slug=slug) if again else Project.objects.create(name=slug, slug=slug)
    t0 = time.perf_counter()
    summary = images_import(project=project, path=folder, workers=workers)
    seconds = time.perf_counter() - t0
    if again:
        assert not summary.imported and len(summary.duplicates) == len(list(folder.glob("*.jpg"))), summary.counts
        return len(summary.duplicates) / seconds
    assert not summary.rejected and not summary.duplicates, summary.counts
    return len(summary.imported) / seconds


def uploads_only(folder: Path, bucket: str, workers: int) -> float:
    """The ceiling on this machine: the two PutObject requests of each image (original and served
    copy) from `workers` threads, with no decoding, stripping or database work at all."""
    from concurrent.futures import ThreadPoolExecutor

    from annotation.services import stored_files

    files = sorted(folder.glob("*.jpg"))
    datas = [p.read_bytes() for p in files]

    def put(i: int) -> None:
        stored_files.store_exact(f"ceiling/{i}.jpg", datas[i])
        stored_files.store_exact(f"ceiling/served/{i}.jpg", datas[i])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, range(len(datas))))
    return len(datas) / (time.perf_counter() - t0)


def main() -> None:
    n = int(os.environ.get("N_IMAGES", "2000"))
    folder = faces(n)
    mean_kb = sum(p.stat().st_size for p in folder.glob("*.jpg")) / n / 1024
    work = Path(tempfile.mkdtemp(prefix="emorate-import-bench-"))
    (work / "weed").mkdir()
    weed, endpoint = start_seaweedfs(work / "weed")
    os.environ.update({"AWS_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    try:
        django_on_postgres()
        from django.test import override_settings

        sys.path.insert(0, str(ROOT))
        from tests.support.s3 import make_bucket, s3_storages

        bucket = make_bucket("bench")
        runs: dict[str, float] = {}
        with override_settings(MEDIA_ROOT=str(work / "local-1")):
            runs["local disk, one at a time (reference)"] = timed_import(folder, "local-1", 1)
        with override_settings(MEDIA_ROOT=str(work / "local-8")):
            runs["local disk, 8 workers"] = timed_import(folder, "local-8", 8)
            runs["re-run on imported files (files/s)"] = timed_import(folder, "local-8", 8, again=True)
        with override_settings(MEDIA_ROOT=str(work / "unused"), STORAGES=s3_storages(bucket)):
            runs["bucket, one at a time"] = timed_import(folder, "s3-1", 1)
        with override_settings(MEDIA_ROOT=str(work / "unused"), STORAGES=s3_storages(bucket)):
            runs["bucket, 8 workers (ours)"] = timed_import(folder, "s3-8", 8)
        with override_settings(MEDIA_ROOT=str(work / "unused"), STORAGES=s3_storages(bucket)):
            runs["bucket, the 2 uploads alone (ceiling)"] = uploads_only(folder, bucket, 8)
    finally:
        weed.terminate()
        try:
            weed.wait(timeout=10)
        except subprocess.TimeoutExpired:
            weed.kill()
            weed.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"import_images: {n} JPEGs of 1024x1024 (mean {mean_kb:.0f} KB), {os.cpu_count()} cores, SeaweedFS on loopback")
    for label, rate in runs.items():
        print(f"  {label:40s} {rate:7.1f} images/s")
    ours, reference = runs["bucket, 8 workers (ours)"], runs["local disk, one at a time (reference)"]
    ceiling = runs["bucket, the 2 uploads alone (ceiling)"]
    print(f"ours {ours:.1f} images/s vs reference {reference:.1f} images/s: ratio {ours / reference:.2f}; "
          f"of the upload-only ceiling {ceiling:.1f}/s: {ours / ceiling:.2f}; "
          f"goal >= 200 images/s into the bucket: {'met' if ours >= 200 else 'not met'}")


if __name__ == "__main__":
    main()
