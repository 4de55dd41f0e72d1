"""import_images of 1024x1024 JPEG faces: onto the local media folder (the default storage) and into
an S3 bucket (a real SeaweedFS on loopback).

Ours: `import_images` with its default workers (processes that read, hash, check and strip the
files; this process stores them and writes their rows in batches, one transaction each) onto the
local folder. Reference, same run: one image at a time (`--workers 1`: each image in its own
transaction), onto the local folder. Also: a re-run on the imported files (known by their hash), the
bucket with the default workers, and the bucket's ceiling (the same two uploads per image alone,
from 8 threads, no decoding or database work; SeaweedFS shares the cores with everything).
The machine may be shared, so beside each rate: the CPU it cost per image, this process and its
worker processes (getrusage self + children), and with the PostgreSQL server's own CPU added.
Goal (#21): at least 400 images/s onto the local folder on 2 cores, i.e. at most about 5 ms of CPU per
image in all.
Run: make bench-import_bench   [N_IMAGES=2000]   (the faces are made once, under bench/out/)
"""

from __future__ import annotations

import io
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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
    bases = [demo_faces.draw_face(demo_faces.random_spec(rng), 384).resize((1024, 1024), Image.Resampling.BICUBIC)
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


def cpu_seconds() -> float:
    """CPU time of this process and its (finished, waited-for) children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def postgres_cpu_seconds() -> float:
    """CPU time of this benchmark's PostgreSQL server: the postmaster, its ended backends (counted
    in its children's time when it reaps them) and the live ones. 0 where /proc cannot tell."""
    from django.db import connection

    try:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = int(cur.fetchone()[0])
        tick = os.sysconf("SC_CLK_TCK")

        def fields(pid: int | str) -> list[str]:  # /proc/PID/stat after the command name: state is [0]
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

        postmaster = int(fields(backend)[1])
        main = fields(postmaster)
        total = sum(int(main[k]) for k in (11, 12, 13, 14))  # utime stime cutime cstime
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    f = fields(entry.name)
                except OSError:
                    continue
                if int(f[1]) == postmaster:  # ppid
                    total += int(f[11]) + int(f[12])
        return total / tick
    except Exception:
        return 0.0


@dataclass
class Run:
    rate: float  # images (or files) per second
    cpu_ms: float  # CPU per image of this process and its workers
    cpu_pg_ms: float  # the same plus the PostgreSQL server's


def timed_import(folder: Path, slug: str, workers: int, *, again: bool = False) -> Run:
    """Images (or, with `again`, already imported files) per second into the project `slug`."""
    from annotation.models import Project
    from annotation.services.image_import import images_import

    project = Project.objects.get(slug=slug) if again else Project.objects.create(name=slug, slug=slug)
    pg0, c0, t0 = postgres_cpu_seconds(), cpu_seconds(), time.perf_counter()
    summary = images_import(project=project, path=folder, workers=workers)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    pg = postgres_cpu_seconds() - pg0
    n = len(summary.duplicates) if again else len(summary.imported)
    if again:
        assert not summary.imported and n == len(list(folder.glob("*.jpg"))), summary.counts
    else:
        assert not summary.rejected and not summary.duplicates, summary.counts
    return Run(n / seconds, 1000 * cpu / n, 1000 * (cpu + pg) / n)


def uploads_only(folder: Path, bucket: str, workers: int) -> Run:
    """The ceiling on this machine: the two PutObject requests of each image (original and served
    copy) from `workers` threads, with no decoding, stripping or database work at all."""
    from concurrent.futures import ThreadPoolExecutor

    from annotation.services import stored_files

    files = sorted(folder.glob("*.jpg"))
    datas = [p.read_bytes() for p in files]

    def put(i: int) -> None:
        stored_files.store_exact(f"ceiling/{i}.jpg", datas[i])
        stored_files.store_exact(f"ceiling/served/{i}.jpg", datas[i])

    c0, t0 = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, range(len(datas))))
    return Run(len(datas) / (time.perf_counter() - t0), 1000 * (cpu_seconds() - c0) / len(datas), 0.0)


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
        from annotation.services.image_import import default_workers
        from tests.support.s3 import make_bucket, s3_storages

        ours_workers = default_workers()
        bucket = make_bucket("bench")
        runs: dict[str, Run] = {}
        with override_settings(MEDIA_ROOT=str(work / "local-1")):
            runs["local folder, one at a time (reference)"] = timed_import(folder, "local-1", 1)
        with override_settings(MEDIA_ROOT=str(work / "local-ours")):
            runs[f"local folder, {ours_workers} workers (ours)"] = timed_import(folder, "local-ours", ours_workers)
            runs["re-run on imported files (files/s)"] = timed_import(folder, "local-ours", ours_workers, again=True)
        with override_settings(MEDIA_ROOT=str(work / "unused"), STORAGES=s3_storages(bucket)):
            runs[f"bucket, {ours_workers} workers"] = timed_import(folder, "s3-ours", ours_workers)
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
    load = os.getloadavg()[0]
    print(f"import_images: {n} JPEGs of 1024x1024 (mean {mean_kb:.0f} KB), {os.cpu_count()} cores "
          f"(load average {load:.1f}), SeaweedFS on loopback")
    print(f"  {'':42s} {'rate':>8s}   {'CPU/image: ours':>15s}  {'+ PostgreSQL':>12s}")
    for label, run in runs.items():
        pg = f"{run.cpu_pg_ms:9.2f} ms" if run.cpu_pg_ms else ""
        print(f"  {label:42s} {run.rate:8.1f}/s  {run.cpu_ms:12.2f} ms  {pg:>12s}")
    ours, reference = runs[f"local folder, {ours_workers} workers (ours)"], runs["local folder, one at a time (reference)"]
    bucket_run = runs[f"bucket, {ours_workers} workers"]
    ceiling = runs["bucket, the 2 uploads alone (ceiling)"]
    cores = 2
    print(f"ours {ours.rate:.1f} images/s vs one at a time {reference.rate:.1f} images/s (same run): ratio "
          f"{ours.rate / reference.rate:.2f}; CPU per image {ours.cpu_pg_ms:.2f} ms vs {reference.cpu_pg_ms:.2f} ms "
          f"(with PostgreSQL): at most {1000 * cores / ours.cpu_pg_ms:.0f} images/s on {cores} free cores; "
          f"goal >= 400 images/s: {'met' if ours.rate >= 400 else 'not met'} here")
    print(f"bucket {bucket_run.rate:.1f} images/s, of the upload-only ceiling {ceiling.rate:.1f}/s: "
          f"{bucket_run.rate / ceiling.rate:.2f}")


if __name__ == "__main__":
    main()
