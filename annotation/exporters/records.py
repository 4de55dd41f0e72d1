"""Release files: constants and the records the writers take (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from annotation.consolidation import BinaryConsolidated, BinaryVotes, Consolidated
from annotation.pgcopy import RatingRows

FLOAT_DECIMALS = 4
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd", "compression_level": 3, "row_group_size": 100_000, "version": "2.6",
    "use_dictionary": True, "write_statistics": True, "data_page_size": 1 << 20,
}
RELEASE_FORMAT = "emorate-release-1"
MANIFEST_FORMAT = "emorate-manifest-1"
SPLIT_ORDER = ("train", "validation", "test")
BASE_COLUMNS = ("file_name", "sha256", "ethnicity", "gender", "age", "prompt", "split")


@dataclass(frozen=True)
class ImageRow:
    """One image of the release as the card shows it; image_id links it to the labels and ratings."""

    image_id: int
    file_name: str
    sha256: str
    ethnicity: str = ""
    gender: str = ""
    age: int | None = None
    prompt: str = ""


@dataclass(frozen=True)
class CardInfo:
    """What the dataset card says beyond the data. ``released`` is passed in (no clock is read)."""

    pretty_name: str
    version: str
    released: str  # ISO date, e.g. "2026-03-01"
    description: str = ""
    license: str = "cc-by-4.0"
    citation: str = ""
    contact: str = ""
    homepage: str = ""
    # {"n_raters": N, "n_described": M, "min_group": 3, "fields": [["Discipline", [["Clinical psychology", 5], ...]], ...]}:
    # the raters' consented backgrounds in aggregate (annotation.services.releases); None: no section
    rater_pool: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative, POSIX separators
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    files: tuple[ManifestEntry, ...]  # sorted by path; manifest.json itself is not listed

    def to_json(self) -> str:
        return _dumps({"format": MANIFEST_FORMAT, "files": [asdict(f) for f in self.files]})


Labels = Consolidated | BinaryConsolidated
Raw = RatingRows | BinaryVotes


def _normalize(obj: Any) -> Any:
    """JSON-ready copy: floats rounded to 6 decimals (NaN/inf -> None), numpy scalars unwrapped,
    tuples -> lists, mapping keys -> str."""
    if isinstance(obj, bool | None | str | int) and not isinstance(obj, np.generic):
        return obj
    if isinstance(obj, np.generic):
        return _normalize(obj.item())
    if isinstance(obj, float):
        return round(obj, 6) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _normalize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_normalize(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_normalize(v) for v in obj.tolist()]
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _dumps(obj: Any) -> str:
    return json.dumps(_normalize(obj), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
