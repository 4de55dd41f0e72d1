"""Reading image metadata and manifests (CSV or JSON Lines). PURE: no Django.

A metadata row names its image in one of the columns `file`, `image`, `path`, `filename` or
`name`; the known demographic columns (`ethnicity`, `age`, `gender`, `prompt`, `source`) are read
into their fields and every other column is kept as a free-form extra.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEY_COLUMNS = ("file", "image", "path", "filename", "name")
KNOWN_FIELDS = ("ethnicity", "age", "gender", "prompt", "source")


class ManifestError(ValueError):
    """The metadata file cannot be used; the message names the file, line and problem."""


@dataclass
class ImageMeta:
    ethnicity: str = ""
    age: int | None = None
    gender: str = ""
    prompt: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetaRow:
    line: int
    key: str
    meta: ImageMeta


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        return [(i + 2, dict(row)) for i, row in enumerate(reader)]
    if suffix in {".jsonl", ".ndjson"}:
        out = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{path.name} line {i}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ManifestError(f"{path.name} line {i}: expected a JSON object")
            out.append((i, obj))
        return out
    raise ManifestError(f"{path.name}: metadata must be a .csv or .jsonl file")


def _meta(line: int, row: dict[str, Any], name: str) -> ImageMeta:
    meta = ImageMeta()
    for key, value in row.items():
        if key is None or key in KEY_COLUMNS:
            continue
        k = key.strip().lower()
        if k in KNOWN_FIELDS:
            text = "" if value is None else str(value).strip()
            if k == "age":
                if text:
                    try:
                        meta.age = int(float(text))
                    except ValueError:
                        raise ManifestError(f"{name} line {line}: age {text!r} is not a number") from None
                    if not 0 <= meta.age <= 150:
                        raise ManifestError(f"{name} line {line}: age {meta.age} is out of range 0..150")
            else:
                setattr(meta, k, text)
        elif value not in (None, ""):
            meta.extra[key] = value
    return meta


def read_metadata(path: Path) -> list[MetaRow]:
    """All rows of a metadata file or manifest; ManifestError on a missing key column or bad value."""
    rows = _rows(path)
    out: list[MetaRow] = []
    for line, row in rows:
        key = next((str(row[c]).strip() for c in KEY_COLUMNS if row.get(c) not in (None, "")), "")
        if not key:
            raise ManifestError(f"{path.name} line {line}: no image column (one of {', '.join(KEY_COLUMNS)})")
        out.append(MetaRow(line=line, key=key, meta=_meta(line, row, path.name)))
    return out
