"""Benchmark of EmpathicInsight-Face scoring: decoding + preprocessing, inference, and both together.

Run from the repository root (no database needed):

    python bench/scoring_bench.py                         # tiny random model, CPU: checks the pipeline
    python bench/scoring_bench.py --model /models/empathic-insight-face --batch-size 256 --images 4096

Without --model a tiny SigLIP2 model is built in a temporary folder (annotation.scoring.tiny):
its inference figure only shows the pipeline's overhead, not the real model's speed. With
--model the real weights are loaded through the same loader the worker uses. The input images are
procedurally drawn faces (annotation.demo_faces) encoded as JPEG at --source-size pixels (the
EmoNet-Face images are 1024 x 1024), cycled from a pool of distinct images.

Prints images per second for:
  decode+preprocess  the prefetch threads alone (read bytes, decode, resize, collate[, pin])
  inference          the model alone on an already collated batch (host->device copy included)
  end to end         score_stream: both overlapped, as the worker runs
with the device, dtype and thread count it ran on. Expected H100 figures: docs/scoring.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _images(n: int, size: int, distinct: int) -> list[bytes]:
    from annotation.demo_faces import face_jpeg_bytes, random_spec

    rng = random.Random(0)
    pool = [face_jpeg_bytes(random_spec(rng), size=size, quality=90) for _ in range(min(distinct, n))]
    return [pool[i % len(pool)] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", metavar="DIR", help="model folder (default: a tiny random model)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    parser.add_argument("--dtype", default=None, help="bf16 / fp16 / fp32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: min(16, cores))")
    parser.add_argument("--source-size", type=int, default=1024, help="pixel size of the JPEG inputs")
    parser.add_argument("--distinct", type=int, default=8, help="distinct images drawn (then cycled)")
    parser.add_argument("--tiny-kind", default="siglip-vision",
                        help="tiny model kind without --model: siglip-vision (fixed size) or siglip2-vision")
    parser.add_argument("--tiny-image-size", type=int, default=384,
                        help="input size of the tiny fixed-size model (384 = the real so400m's preprocessing)")
    parser.add_argument("--no-jpeg-draft", action="store_true", help="always decode JPEGs at full size")
    parser.add_argument("--repeats", type=int, default=5, help="timed inference batches")
    args = parser.parse_args()

    import numpy as np
    import torch

    from annotation.scoring.backends import BatchPrefetcher, load_scorer
    from annotation.scoring.contracts import ImageSource

    model_dir = args.model
    if model_dir is None:
        from annotation.scoring.tiny import build_tiny_model

        model_dir = str(build_tiny_model(tempfile.mkdtemp(prefix="tiny-eif-"), kind=args.tiny_kind,
                                         image_size=args.tiny_image_size))
        label = f"tiny random {args.tiny_kind} (pipeline overhead only)"
    else:
        label = model_dir
    t0 = time.perf_counter()
    model = load_scorer(model_dir, device=args.device, dtype=args.dtype, workers=args.workers,
                        jpeg_draft=not args.no_jpeg_draft)
    load_s = time.perf_counter() - t0
    gpu = torch.cuda.get_device_name(0) if model.device.startswith("cuda") else None
    print(f"model: {label}")
    print(f"loaded {model!r} in {load_s:.1f} s (version = checksum of the files)")
    print(f"device: {model.device}{f' ({gpu})' if gpu else ''}, dtype {str(model.dtype).removeprefix('torch.')}, "
          f"torch {torch.__version__}, {model.workers} decode threads, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}")

    t0 = time.perf_counter()
    data = _images(args.images, args.source_size, args.distinct)
    print(f"inputs: {len(data)} JPEGs of {args.source_size}x{args.source_size} "
          f"({sum(map(len, data)) / len(data) / 1024:.0f} KiB each; drawn in {time.perf_counter() - t0:.1f} s)")

    def sources() -> list[ImageSource]:
        return [ImageSource(i, (lambda b=b: b)) for i, b in enumerate(data)]

    pin = model.device.startswith("cuda")
    # 1. decode + preprocess alone
    t0 = time.perf_counter()
    n = 0
    first = None
    for batch in BatchPrefetcher(sources(), model.preprocess, batch_size=args.batch_size, workers=model.workers,
                                 pin=pin):
        n += len(batch.image_ids)
        first = first or batch
    decode_s = time.perf_counter() - t0
    print(f"decode+preprocess: {n / decode_s:8.1f} images/s  ({decode_s:.2f} s for {n})")

    # 2. inference alone, on one collated batch (warm-up first: cuDNN autotune, lazy init)
    assert first is not None and first.tensors is not None
    model.infer(first.tensors)
    if pin:
        torch.cuda.synchronize()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.infer(first.tensors)  # ends with .cpu(): synchronised
        times.append(time.perf_counter() - t0)
    per_batch = float(np.median(times))
    b = len(first.image_ids)
    print(f"inference:         {b / per_batch:8.1f} images/s  (median {per_batch * 1000:.1f} ms per batch of {b})")

    # 3. end to end
    t0 = time.perf_counter()
    n = sum(len(sb.image_ids) for sb in model.score_stream(sources(), batch_size=args.batch_size))
    e2e_s = time.perf_counter() - t0
    print(f"end to end:        {n / e2e_s:8.1f} images/s  ({e2e_s:.2f} s for {n}, batch {args.batch_size})")
    if pin:
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")

    # 4. peer, same model and images: the straightforward loop, one image at a time with one decode
    # thread (no batching, no read-ahead).
    naive = load_scorer(model_dir, device=args.device, dtype=args.dtype, workers=1,
                        jpeg_draft=not args.no_jpeg_draft)
    subset = sources()[: min(len(data), 128)]
    t0 = time.perf_counter()
    m = sum(len(sb.image_ids) for sb in naive.score_stream(subset, batch_size=1))
    peer_s = time.perf_counter() - t0
    print(f"peer (batch 1, one decode thread): {m / peer_s:8.1f} images/s; ratio ours/peer "
          f"{(n / e2e_s) / (m / peer_s):.1f}x")


if __name__ == "__main__":
    main()
