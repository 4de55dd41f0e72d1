"""The on-disk layout of an EmpathicInsight-Face model folder. PURE: no Django, no torch.

A model folder (``--model DIR`` or settings.EMORATE_SCORING_MODEL_DIR) holds:

- the backbone in Hugging Face format, in a subfolder (or DIR itself), recognised by its
  ``config.json`` whose ``model_type`` is one of BACKBONE_TYPES: a full SigLIP / SigLIP2 checkpoint
  (text and vision towers; only the vision tower is loaded) or a vision-only one. Weights as
  ``*.safetensors`` (or ``pytorch_model*.bin``); ``preprocessor_config.json`` optional.
- 40 heads, one per emotion, named ``model_<slug>_best.pth`` (contracts.head_filename), in DIR or
  any subfolder; a known alias spelling is accepted (``model_hopelessness_best.pth`` for
  Helplessness).
- optionally neutral means: ``neutral_means.json`` (see ``read_neutral_means`` for the formats).

``inspect_model_dir`` finds all of that and computes the *version*: a SHA-256 over the relative
path and content of every file the loader reads, so different weights always get a new version
and a copied folder keeps its version.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from annotation.taxonomy import ALIASES, EMOTIONS, canonical_key

from .contracts import ModelDirError, head_filename, head_stems

BACKBONE_TYPES: Final = frozenset({"siglip", "siglip2", "siglip_vision_model", "siglip2_vision_model"})
NEUTRAL_MEANS_FILES: Final = ("neutral_means.json",)
_WEIGHT_PATTERNS: Final = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json",
                           "pytorch_model*.bin.index.json")
_BACKBONE_META: Final = ("config.json", "preprocessor_config.json")
_MAX_DEPTH: Final = 3


@dataclass(frozen=True)
class ModelDir:
    """What ``inspect_model_dir`` found. Paths are absolute."""

    root: Path
    backbone_dir: Path
    model_type: str
    heads: tuple[Path, ...]  # taxonomy order
    neutral_means_file: Path | None
    version: str  # sha256 hex of the files below
    files: tuple[Path, ...]


def _walk(root: Path, max_depth: int = _MAX_DEPTH) -> list[Path]:
    out: list[Path] = []
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError as exc:
            raise ModelDirError(f"cannot read {folder}: {exc}") from exc
        for entry in entries:
            if entry.name.startswith("."):
                continue  # .cache/ of huggingface-cli downloads, .git
            if entry.is_dir():
                if depth < max_depth:
                    stack.append((entry, depth + 1))
            elif entry.is_file():
                out.append(entry)
    return out


def _backbone(root: Path, files: list[Path]) -> tuple[Path, str]:
    found: list[tuple[Path, str]] = []
    for f in files:
        if f.name != "config.json":
            continue
        try:
            model_type = str(json.loads(f.read_text(encoding="utf-8")).get("model_type", ""))
        except (OSError, ValueError, AttributeError):
            continue
        if model_type in BACKBONE_TYPES:
            found.append((f.parent, model_type))
    if not found:
        raise ModelDirError(
            f"no backbone in {root}: expected a subfolder with a Hugging Face config.json whose model_type is "
            f"one of {', '.join(sorted(BACKBONE_TYPES))} (e.g. google/siglip2-so400m-patch16-384, see docs/scoring.md)")
    if len(found) > 1:
        raise ModelDirError(f"more than one backbone in {root}: {', '.join(str(p) for p, _ in found)}; keep one")
    return found[0]


def _heads(root: Path, files: list[Path]) -> tuple[Path, ...]:
    by_name: dict[str, list[Path]] = {}
    for f in files:
        if f.name.startswith("model_") and f.name.endswith("_best.pth"):
            by_name.setdefault(f.name.lower(), []).append(f)
    heads: list[Path] = []
    missing: list[str] = []
    for emotion in EMOTIONS:
        hits = [p for stem in head_stems(emotion) for p in by_name.get(f"model_{stem}_best.pth", [])]
        if not hits:
            missing.append(head_filename(emotion))
        elif len(hits) > 1:
            raise ModelDirError(f"more than one head file for {emotion!r} in {root}: "
                                f"{', '.join(str(p) for p in hits)}; keep one")
        else:
            heads.append(hits[0])
    if missing:
        raise ModelDirError(f"missing head file(s) in {root}: {', '.join(missing)} "
                            f"({len(missing)} of {len(EMOTIONS)} emotions; names: model_<emotion>_best.pth)")
    return tuple(heads)


def read_neutral_means(path: Path) -> list[float]:
    """Per-emotion neutral means, in taxonomy order, from a JSON object keyed by emotion.

    Accepted keys for an emotion: its exact name (``"Jealousy & Envy"``), a known alias, its slug
    (``"jealousy_&_envy"``) or its head file stem (``"model_jealousy_&_envy_best"``). Accepted values:
    a number, or an object with a numeric ``"mean"`` (the authors' neutral-stats format). Every
    emotion must be present exactly once; other keys are refused (they are usually a typo).
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"cannot read neutral means {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelDirError(f"{path}: expected a JSON object {{emotion: mean}}")
    lookup: dict[str, int] = {}
    for i, name in enumerate(EMOTIONS):
        lookup[canonical_key(name)] = i
        for alias in (a for a, target in ALIASES.items() if target == name):
            lookup[canonical_key(alias)] = i
        for stem in head_stems(name):
            lookup[stem] = i
            lookup[f"model_{stem}_best"] = i
    means: list[float | None] = [None] * len(EMOTIONS)
    for key, value in raw.items():
        idx = lookup[str(key)] if str(key) in lookup else lookup.get(canonical_key(str(key)))
        if idx is None:
            raise ModelDirError(f"{path}: unknown emotion key {key!r}")
        mean = value.get("mean") if isinstance(value, dict) else value
        if isinstance(mean, bool) or not isinstance(mean, int | float) or not math.isfinite(mean):
            raise ModelDirError(f"{path}: the mean of {key!r} is not a finite number: {mean!r}")
        if means[idx] is not None:
            raise ModelDirError(f"{path}: {EMOTIONS[idx]!r} appears twice (key {key!r})")
        means[idx] = float(mean)
    missing = [EMOTIONS[i] for i, m in enumerate(means) if m is None]
    if missing:
        raise ModelDirError(f"{path}: no neutral mean for {', '.join(missing)}")
    return [float(m) for m in means if m is not None]


def _checksum(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0")
        h = hashlib.sha256()
        with f.open("rb") as fh:
            while chunk := fh.read(8 << 20):
                h.update(chunk)
        digest.update(h.digest())
    return digest.hexdigest()


def inspect_model_dir(path: str | Path) -> ModelDir:
    """Find the backbone, heads and neutral means under `path` and checksum them.

    Raises ModelDirError naming the first problem (missing folder, no or two backbones, missing
    head files by name). Reads every weight file once (the checksum): a few seconds for so400m.
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ModelDirError(f"model folder {root} does not exist (set EMORATE_SCORING_MODEL_DIR or --model)")
    files = _walk(root)
    backbone_dir, model_type = _backbone(root, files)
    heads = _heads(root, files)
    neutral = next((f for f in files if f.name in NEUTRAL_MEANS_FILES), None)
    backbone_files = [f for f in files if f.parent == backbone_dir
                      and (f.name in _BACKBONE_META or any(f.match(p) for p in _WEIGHT_PATTERNS))]
    if not any(f.name not in _BACKBONE_META for f in backbone_files):
        raise ModelDirError(f"backbone folder {backbone_dir} has a config.json but no weights "
                            "(*.safetensors or pytorch_model*.bin)")
    used = backbone_files + list(heads) + ([neutral] if neutral else [])
    return ModelDir(root=root, backbone_dir=backbone_dir, model_type=model_type, heads=heads,
                    neutral_means_file=neutral, version=_checksum(root, used), files=tuple(used))
