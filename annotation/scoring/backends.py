"""EmpathicInsight-Face: a frozen SigLIP/SigLIP2 image encoder feeding 40 per-emotion MLP heads.

torch and transformers are imported lazily (inside functions), so importing this module costs
nothing and the web process never loads them. Nothing here downloads anything: the backbone is
read with ``local_files_only=True`` from the folder that ``modeldir.inspect_model_dir`` found.

Inference contract (``EmpathicInsightFace``):

- embedding = the vision tower's pooled output (``pooler_output``, 1152-dim for so400m),
  L2-normalised (as the authors' inference code does) unless ``normalize=False``;
- each head is a stack of Linear layers with ReLU between them (dropout is off at inference),
  its sizes read from the weights; its single output is the raw score on about 0..7;
- scores are returned raw (absolute); ``neutral_means`` (if the folder ships them) are exposed
  for callers that want neutral-relative scores (``score - neutral_mean``).

Speed: images are read and decoded in a thread pool (Pillow releases the GIL) several batches
ahead of the model; fixed-resolution SigLIP inputs cross to the device as uint8 NHWC from pinned
memory (a quarter of the float bytes, non_blocking) and are normalised there, which leaves them
channels-last. On CUDA the backbone runs in bf16 (fp16 where bf16 is unsupported) under
torch.autocast; on the CPU in float32, with the cores split between decode threads and torch's
intra-op threads (torch.set_num_threads: a process-wide setting, fine for a scoring worker).
Everything runs under torch.inference_mode.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annotation.taxonomy import EMOTIONS

from .contracts import DEFAULT_MODEL_NAME, ImageSource, ModelDirError, ScoredBatch
from .modeldir import ModelDir, inspect_model_dir, read_neutral_means

if TYPE_CHECKING:
    import torch
    from PIL import Image as PILImage

log = logging.getLogger(__name__)

_SIGLIP2_TYPES = {"siglip2", "siglip2_vision_model"}
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")
_LAYER_KEY = re.compile(r"^(?P<stem>.*?)(?P<index>\d+)\.(?P<kind>weight|bias)$")
_JPEG_DRAFT_FACTOR = 2  # decode JPEGs at reduced scale only when at least this much larger than needed


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------


def _unwrap_state_dict(obj: Any, path: Path) -> Mapping[str, Any]:
    import torch

    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelDirError(f"{path.name}: expected a PyTorch state dict of Linear layers (name -> tensor)")
    return obj


def head_layers(state: Mapping[str, torch.Tensor], name: str) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The (weight, bias) pairs of a head's Linear layers in forward order.

    Keys may carry any prefix (``0.weight``, ``layers.0.weight``, ``module.net.3.weight``): the
    layer order is the number before ``.weight``/``.bias``; all layers must share one prefix.
    Raises ModelDirError naming the file and key for anything that is not such a stack.
    """
    stems: set[str] = set()
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        m = _LAYER_KEY.match(key)
        if m is None:
            raise ModelDirError(f"{name}: unexpected key {key!r} (expected <prefix><n>.weight / <prefix><n>.bias "
                                "of a stack of Linear layers)")
        stems.add(m["stem"])
        layers.setdefault(int(m["index"]), {})[m["kind"]] = tensor
    if len(stems) > 1:
        raise ModelDirError(f"{name}: layers under different prefixes {sorted(stems)}; expected one Sequential")
    out: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    for index in sorted(layers):
        weight, bias = layers[index].get("weight"), layers[index].get("bias")
        if weight is None or weight.ndim != 2:
            raise ModelDirError(f"{name}: layer {index} has no 2-D weight (only Linear layers are supported)")
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise ModelDirError(f"{name}: layer {index} bias has shape {tuple(bias.shape)}, "
                                f"expected ({weight.shape[0]},)")
        if out and out[-1][0].shape[0] != weight.shape[1]:
            raise ModelDirError(f"{name}: layer {index} takes {weight.shape[1]} inputs but the layer before "
                                f"gives {out[-1][0].shape[0]}")
        out.append((weight, bias))
    if not out:
        raise ModelDirError(f"{name}: no layers")
    if out[-1][0].shape[0] != 1:
        raise ModelDirError(f"{name}: the last layer gives {out[-1][0].shape[0]} outputs, expected 1 (one score)")
    return out


def load_head(path: Path, embed_dim: int) -> torch.nn.Sequential:
    """Read one head file (weights only: torch.load(weights_only=True), no pickled code runs)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ModelDirError(f"cannot read head file {path}: {exc}") from exc
    layers = head_layers(_unwrap_state_dict(obj, path), path.name)
    if layers[0][0].shape[1] != embed_dim:
        raise ModelDirError(f"{path.name}: the head takes {layers[0][0].shape[1]}-dim embeddings but the backbone "
                            f"gives {embed_dim}-dim ones (wrong backbone for these heads?)")
    modules: list[torch.nn.Module] = []
    for i, (weight, bias) in enumerate(layers):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            linear.weight.copy_(weight.float())
            if bias is not None:
                linear.bias.copy_(bias.float())
        modules.append(linear)
        if i < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules).eval()


# --------------------------------------------------------------------------------------------
# Preprocessing (runs in prefetch threads)
# --------------------------------------------------------------------------------------------


def _open_rgb(data: bytes, draft_to: tuple[int, int] | None) -> PILImage.Image:
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    if draft_to is not None and img.format == "JPEG":
        w, h = img.size
        if w >= _JPEG_DRAFT_FACTOR * draft_to[0] and h >= _JPEG_DRAFT_FACTOR * draft_to[1]:
            img.draft("RGB", draft_to)  # DCT-domain downscale, never below the requested size
    return img.convert("RGB")


@dataclass
class FixedResPreprocess:
    """SigLIP fixed resolution: resize to (height, width), then (x * rescale - mean) / std on the device."""

    height: int
    width: int
    resample: int
    rescale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    jpeg_draft: bool = True

    def one(self, data: bytes) -> np.ndarray:
        img = _open_rgb(data, (self.width, self.height) if self.jpeg_draft else None)
        if img.size != (self.width, self.height):
            img = img.resize((self.width, self.height), resample=self.resample)
        return np.asarray(img, dtype=np.uint8)  # (H, W, 3)

    def collate(self, items: list[Any], pin: bool) -> dict[str, torch.Tensor]:
        import torch

        batch = torch.from_numpy(np.stack(items))  # (B, H, W, 3) uint8
        return {"pixels_u8": batch.pin_memory() if pin else batch}

    def to_device(self, host: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype
                  ) -> dict[str, torch.Tensor]:
        import torch

        x = host["pixels_u8"].to(device, non_blocking=True)
        # NHWC -> NCHW view: the memory stays channels-last, which the patch convolution prefers.
        x = x.permute(0, 3, 1, 2).float()
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        x = (x * self.rescale - mean) / std
        return {"pixel_values": x.to(dtype).contiguous(memory_format=torch.channels_last)}


@dataclass
class NaFlexPreprocess:
    """SigLIP2 NaFlex: the Hugging Face processor cuts each image into patches on the host."""

    processor: Any
    jpeg_draft: bool = True

    def one(self, data: bytes) -> dict[str, Any]:
        # The processor keeps the aspect ratio within max_num_patches patches: about side x side.
        side = int(self.processor.patch_size * math.isqrt(int(self.processor.max_num_patches)))
        img = _open_rgb(data, (side, side) if self.jpeg_draft else None)
        out = self.processor(images=[img], return_tensors="pt")
        return {k: out[k] for k in ("pixel_values", "pixel_attention_mask", "spatial_shapes")}

    def collate(self, items: list[Any], pin: bool) -> dict[str, torch.Tensor]:
        import torch

        batch = {k: torch.cat([it[k] for it in items]) for k in items[0]}
        return {k: v.pin_memory() for k, v in batch.items()} if pin else batch

    def to_device(self, host: dict[str, torch.Tensor], device: torch.device, dtype: torch.dtype
                  ) -> dict[str, torch.Tensor]:
        out = {k: v.to(device, non_blocking=True) for k, v in host.items()}
        out["pixel_values"] = out["pixel_values"].to(dtype)
        return out


Preprocess = FixedResPreprocess | NaFlexPreprocess


@dataclass
class HostBatch:
    """A decoded, collated batch waiting for the model."""

    image_ids: list[int]
    tensors: dict[str, Any] | None
    failed: dict[int, str] = field(default_factory=dict)
    decode_seconds: float = 0.0


class BatchPrefetcher:
    """Decodes and collates batches in background threads, `depth` batches ahead of the consumer.

    Iterating yields HostBatch objects in input order. Per image: `read()` then `preprocess.one()`
    on a pool of `workers` threads; per batch: collation (and pinning) on one more thread, so the
    consumer only ever waits when decoding is slower than the model. An image whose bytes cannot
    be read or decoded is reported in `failed` and left out of the batch.
    """

    def __init__(self, sources: Iterable[ImageSource], preprocess: Preprocess, *, batch_size: int,
                 workers: int, depth: int = 3, pin: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._sources = iter(sources)
        self._pre = preprocess
        self._batch_size = batch_size
        self._workers = max(1, workers)
        self._depth = max(1, depth)
        self._pin = pin

    def _decode(self, source: ImageSource) -> tuple[Any, str | None, float]:
        started = time.perf_counter()
        try:
            item = self._pre.one(source.read())
        except Exception as exc:  # noqa: BLE001 - a bad file must not stop the other images
            return None, f"{type(exc).__name__}: {exc}"[:300], time.perf_counter() - started
        return item, None, time.perf_counter() - started

    def _collate(self, chunk: list[ImageSource], futures: list[Future[tuple[Any, str | None, float]]]) -> HostBatch:
        ids: list[int] = []
        items: list[Any] = []
        failed: dict[int, str] = {}
        spent = 0.0
        for source, fut in zip(chunk, futures, strict=True):
            item, error, seconds = fut.result()
            spent += seconds
            if error is not None:
                failed[source.image_id] = error
            else:
                ids.append(source.image_id)
                items.append(item)
        tensors = self._pre.collate(items, self._pin) if items else None
        return HostBatch(ids, tensors, failed, spent)

    def __iter__(self) -> Iterator[HostBatch]:
        pending: deque[Future[HostBatch]] = deque()
        with ThreadPoolExecutor(self._workers, thread_name_prefix="score-decode") as pool, \
                ThreadPoolExecutor(1, thread_name_prefix="score-collate") as collator:
            def submit() -> bool:
                chunk = list(islice(self._sources, self._batch_size))
                if not chunk:
                    return False
                futures = [pool.submit(self._decode, s) for s in chunk]
                pending.append(collator.submit(self._collate, chunk, futures))
                return True

            more = True
            while more and len(pending) < self._depth:
                more = submit()
            while pending:
                batch = pending.popleft().result()
                if more:
                    more = submit()
                yield batch


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


def pick_device(device: str | None = None) -> str:
    """`device` if given, else "cuda" when a GPU is visible, else "cpu"."""
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _pick_dtype(device: str, dtype: str | None) -> torch.dtype:
    import torch

    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "fp32": torch.float32, "float32": torch.float32}
    if dtype:
        if dtype not in names:
            raise ValueError(f"unknown dtype {dtype!r} (allowed: bf16, fp16, fp32)")
        return names[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _processor_for(layout: ModelDir, config: Any, jpeg_draft: bool) -> Preprocess:
    from transformers import Siglip2ImageProcessorPil, SiglipImageProcessorPil

    has_pre = (layout.backbone_dir / "preprocessor_config.json").is_file()
    if layout.model_type in _SIGLIP2_TYPES:
        vision = getattr(config, "vision_config", config)
        if has_pre:
            proc = Siglip2ImageProcessorPil.from_pretrained(str(layout.backbone_dir), local_files_only=True)
        else:
            proc = Siglip2ImageProcessorPil(patch_size=vision.patch_size, max_num_patches=vision.num_patches)
        return NaFlexPreprocess(proc, jpeg_draft=jpeg_draft)
    vision = getattr(config, "vision_config", config)
    if has_pre:
        sp = SiglipImageProcessorPil.from_pretrained(str(layout.backbone_dir), local_files_only=True)
    else:
        sp = SiglipImageProcessorPil(size={"height": vision.image_size, "width": vision.image_size})
    mean = tuple(float(v) for v in (sp.image_mean if sp.do_normalize else (0.0, 0.0, 0.0)))
    std = tuple(float(v) for v in (sp.image_std if sp.do_normalize else (1.0, 1.0, 1.0)))
    return FixedResPreprocess(height=int(sp.size["height"]), width=int(sp.size["width"]),
                              resample=int(sp.resample), rescale=float(sp.rescale_factor) if sp.do_rescale else 1.0,
                              mean=mean, std=std, jpeg_draft=jpeg_draft)  # type: ignore[arg-type]


def _load_backbone(layout: ModelDir, dtype: torch.dtype) -> tuple[Any, Any]:
    import transformers
    from transformers import AutoConfig, Siglip2VisionModel, SiglipVisionModel

    path = str(layout.backbone_dir)
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    cls = Siglip2VisionModel if layout.model_type in _SIGLIP2_TYPES else SiglipVisionModel
    tlog: Any = transformers.logging  # untyped
    level = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()  # a full checkpoint's text tower is "unexpected": expected
    tlog.disable_progress_bar()
    try:
        model: Any = cls.from_pretrained(path, local_files_only=True, dtype=dtype)
    except Exception as exc:  # noqa: BLE001 - name the folder whatever went wrong
        raise ModelDirError(f"cannot load the backbone from {path}: {exc}") from exc
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()
    return model.eval(), config


class EmpathicInsightFace:
    """A loaded model: backbone + 40 heads on one device. See the module docstring.

    Thread-safety: one instance serves one caller at a time (the gpu worker runs one task at a
    time); `score_stream` itself uses background threads only for decoding.
    """

    def __init__(self, layout: ModelDir, *, name: str = DEFAULT_MODEL_NAME, device: str | None = None,
                 dtype: str | None = None, normalize: bool = True, jpeg_draft: bool = True,
                 workers: int | None = None):
        import torch

        self.layout = layout
        self.name = name
        self.version = layout.version
        self.device = pick_device(device)
        self._torch_device = torch.device(self.device)
        self.dtype = _pick_dtype(self.device, dtype)
        self.normalize = normalize
        cores = os.cpu_count() or 1
        if self.device == "cpu":
            # Decode threads and torch's own threads share the cores: oversubscribed, torch's
            # spinning workers slow both several-fold (measured 3x on 2 cores). Split them.
            self.workers = workers or max(1, cores // 2)
            torch.set_num_threads(max(1, cores - self.workers))
        else:
            self.workers = workers or min(16, cores)
        backbone, config = _load_backbone(layout, self.dtype)
        self.config = config
        self.embed_dim = int(getattr(config, "vision_config", config).hidden_size)
        self.preprocess = _processor_for(layout, config, jpeg_draft)
        if isinstance(self.preprocess, FixedResPreprocess) and self.device.startswith("cuda"):
            backbone = backbone.to(memory_format=torch.channels_last)
        self.backbone = backbone.to(self._torch_device)
        heads = [load_head(p, self.embed_dim) for p in layout.heads]
        self.heads = torch.nn.ModuleList(heads).to(self._torch_device).eval()
        self.neutral_means = (np.asarray(read_neutral_means(layout.neutral_means_file), dtype=np.float32)
                              if layout.neutral_means_file else None)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"EmpathicInsightFace({self.layout.model_type}, {self.embed_dim}-dim, {len(self.heads)} heads, "
                f"{self.device}/{str(self.dtype).removeprefix('torch.')}, version {self.version[:12]})")

    def _autocast(self) -> Any:
        import torch

        if self.device.startswith("cuda") and self.dtype != torch.float32:
            return torch.autocast(device_type="cuda", dtype=self.dtype)
        return torch.autocast(device_type="cpu", enabled=False)

    def infer(self, host: dict[str, Any]) -> np.ndarray:
        """Scores (B, 40) float32 for a collated host batch (see Preprocess.collate)."""
        import torch

        with self._lock, torch.inference_mode():
            inputs = self.preprocess.to_device(host, self._torch_device, self.dtype)
            with self._autocast():
                pooled = self.backbone(**inputs).pooler_output
            emb = pooled.float()
            if self.normalize:
                emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            scores = torch.cat([head(emb) for head in self.heads], dim=1)  # heads stay float32
            return scores.cpu().numpy().astype(np.float32)

    def score_images(self, images: list[bytes]) -> np.ndarray:
        """Scores (N, 40) of encoded images, in one batch (tests, small jobs)."""
        items = [self.preprocess.one(b) for b in images]
        return self.infer(self.preprocess.collate(items, pin=False))

    def score_stream(self, sources: Iterable[ImageSource], *, batch_size: int = 64) -> Iterator[ScoredBatch]:
        """Score many images: decoding runs `workers` threads ahead; batches come in input order."""
        pin = self.device.startswith("cuda")
        for batch in BatchPrefetcher(sources, self.preprocess, batch_size=batch_size, workers=self.workers,
                                     pin=pin):
            started = time.perf_counter()
            scores = self.infer(batch.tensors) if batch.tensors is not None else np.zeros((0, len(EMOTIONS)))
            yield ScoredBatch(image_ids=batch.image_ids, scores=scores.tolist(), failed=batch.failed,
                              decode_seconds=batch.decode_seconds, infer_seconds=time.perf_counter() - started)


def load_scorer(model_dir: str | Path, *, name: str = DEFAULT_MODEL_NAME, device: str | None = None,
                dtype: str | None = None, layout: ModelDir | None = None, **options: Any) -> EmpathicInsightFace:
    """Load EmpathicInsight-Face from a local folder (layout: annotation.scoring.modeldir).

    Raises ModelDirError naming the missing or unusable file. Never downloads.
    """
    layout = layout or inspect_model_dir(model_dir)
    started = time.perf_counter()
    model = EmpathicInsightFace(layout, name=name, device=device, dtype=dtype, **options)
    log.info("loaded %r in %.1f s", model, time.perf_counter() - started)
    return model


_CACHE: dict[tuple[str, str, str | None], EmpathicInsightFace] = {}
_CACHE_LOCK = threading.Lock()


def cached_scorer(model_dir: str | Path, *, name: str = DEFAULT_MODEL_NAME, device: str | None = None,
                  layout: ModelDir | None = None, loader: Callable[..., EmpathicInsightFace] = load_scorer,
                  ) -> EmpathicInsightFace:
    """One loaded model per (folder, version, device) and process: the gpu worker loads the weights
    once, not per task. A changed folder (new checksum) loads afresh and drops the old one."""
    layout = layout or inspect_model_dir(model_dir)
    key = (str(layout.root), layout.version, device)
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None or model.name != name:
            _CACHE.clear()
            model = loader(layout.root, name=name, device=device, layout=layout)
            _CACHE[key] = model
        return model
