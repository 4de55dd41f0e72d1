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
# The longest value each text field's column holds (annotation.models.Image: name 500,
# ethnicity 100, gender 50, source 200 characters; prompt is unbounded). A longer value is refused
# here, naming the line, rather than ending the import in a database error.
MAX_NAME = 500
MAX_CHARS = {"ethnicity": 100, "gender": 50, "source": 200}


def text_problem(what: str, text: str, limit: int | None) -> str | None:
    """Why ``text`` cannot be stored in a column of ``limit`` characters (None when it can): too
    long, or holding a NUL character, which PostgreSQL text cannot hold."""
    if "\x00" in text:
        return f"{what} contains a NUL character"
    if limit is not None and len(text) > limit:
        return f"{what} is {len(text):,} characters long; the limit is {limit:,}"
    return None


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
                problem = text_problem(k, text, MAX_CHARS.get(k))
                if problem:
                    raise ManifestError(f"{name} line {line}: {problem}")
                setattr(meta, k, text)
        elif value not in (None, ""):
            if "\\u0000" in json.dumps(value):  # nor can PostgreSQL's jsonb
                raise ManifestError(f"{name} line {line}: column {key!r} contains a NUL character")
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
        problem = text_problem("the image name", key, MAX_NAME)
        if problem:
            raise ManifestError(f"{path.name} line {line}: {problem}")
        out.append(MetaRow(line=line, key=key, meta=_meta(line, row, path.name)))
    return out
