"""Build a tiny, randomly initialised EmpathicInsight-Face folder in the real on-disk layout.

For tests, the benchmark's CPU run and trying the worker without the real weights: the folder is
read by the same loader as the real model (annotation.scoring.backends), nothing is mocked. The
scores mean nothing. torch/transformers are imported lazily.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from annotation.taxonomy import EMOTIONS

from .contracts import head_filename

Kind = Literal["siglip2-vision", "siglip2-full", "siglip-vision", "siglip-full"]
KINDS: tuple[Kind, ...] = ("siglip2-vision", "siglip2-full", "siglip-vision", "siglip-full")
HEAD_KEY_STYLES = ("plain", "layers", "module")


def _vision_kwargs(hidden: int) -> dict[str, Any]:
    return {"hidden_size": hidden, "intermediate_size": 2 * hidden, "num_hidden_layers": 2, "num_attention_heads": 2}


def build_tiny_model(root: str | Path, *, kind: Kind = "siglip2-vision", hidden: int = 32,
                     head_sizes: tuple[int, ...] = (24, 12, 6), head_keys: str = "layers", seed: int = 0,
                     neutral_means: bool = False, backbone_subdir: str = "backbone", image_size: int = 64) -> Path:
    """Write a tiny backbone (HF format, in `root/backbone_subdir`) and 40 heads into `root`.

    `head_keys`: "plain" (``0.weight``), "layers" (``layers.0.weight``, the authors' MLP) or
    "module" (``module.net.0.weight``, a DataParallel save). `image_size`: input size of the
    fixed-resolution SigLIP kinds (the real so400m uses 384). Returns `root`.
    """
    import torch
    from transformers import (
        Siglip2Config,
        Siglip2ImageProcessorPil,
        Siglip2Model,
        Siglip2VisionConfig,
        Siglip2VisionModel,
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    if head_keys not in HEAD_KEY_STYLES:
        raise ValueError(f"head_keys must be one of {HEAD_KEY_STYLES}")
    torch.manual_seed(seed)
    root = Path(root)
    backbone_dir = root / backbone_subdir
    backbone_dir.mkdir(parents=True, exist_ok=True)
    text = {"hidden_size": hidden, "intermediate_size": 2 * hidden, "num_hidden_layers": 1, "num_attention_heads": 2,
            "vocab_size": 64, "max_position_embeddings": 16, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    model: torch.nn.Module
    if kind.startswith("siglip2"):
        vision2 = Siglip2VisionConfig(**_vision_kwargs(hidden), patch_size=16, num_patches=196)
        model = (Siglip2VisionModel(vision2) if kind == "siglip2-vision"
                 else Siglip2Model(Siglip2Config(vision_config=vision2.to_dict(), text_config=text)))
        processor: object = Siglip2ImageProcessorPil(patch_size=16, max_num_patches=196)
    else:
        vision1 = SiglipVisionConfig(**_vision_kwargs(hidden), image_size=image_size, patch_size=16)
        model = (SiglipVisionModel(vision1) if kind == "siglip-vision"
                 else SiglipModel(SiglipConfig(vision_config=vision1.to_dict(), text_config=text)))
        processor = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})
    model.save_pretrained(str(backbone_dir))
    processor.save_pretrained(str(backbone_dir))  # type: ignore[attr-defined]

    sizes = (hidden, *head_sizes, 1)
    for emotion in EMOTIONS:
        state: dict[str, torch.Tensor] = {}
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            index = 3 * i  # Linear, ReLU, Dropout per block: the authors' Sequential indices
            prefix = {"plain": "", "layers": "layers.", "module": "module.net."}[head_keys]
            layer = torch.nn.Linear(n_in, n_out)
            state[f"{prefix}{index}.weight"] = layer.weight.detach().clone()
            state[f"{prefix}{index}.bias"] = (layer.bias.detach() + 0.5).clone()
        torch.save(state, root / head_filename(emotion))
    if neutral_means:
        means = {f"model_{head_filename(e)[6:-9]}_best": {"mean": 0.1 * i} for i, e in enumerate(EMOTIONS)}
        (root / "neutral_means.json").write_text(json.dumps(means), encoding="utf-8")
    return root
