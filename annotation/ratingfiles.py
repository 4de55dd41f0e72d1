"""Parsing rating files into validated records. PURE: no Django.

Formats (`import_ratings --format`):
  long           CSV `image,rater,emotion,value`, one row per rating value.
  emonet-binary  the EmoNet-Face authors' binary.csv: `path,annotator,value,emotion`, value True/False.
  emonet-hq      the authors' hq.csv: `image,annotator,human,annotations`; `annotations` is a
                 Python dict literal {"Group|Emotion": value}; rows with human false are model
                 predictions, returned apart from expert ratings.

In an intensity project every record carries all emotions; emotions a file leaves out for a rater
and image are 0 ("not present"), as in the authors' tool. A file with any bad row is refused whole:
`parse_ratings` raises RatingFileError listing every bad line.
"""

from __future__ import annotations

import ast
import csv
import io
from dataclasses import dataclass, field
from typing import Literal

from annotation.taxonomy import Taxonomy, parse_value

Format = Literal["long", "emonet-binary", "emonet-hq"]
FORMATS: tuple[str, ...] = ("long", "emonet-binary", "emonet-hq")
HEADERS: dict[str, tuple[str, ...]] = {
    "long": ("image", "rater", "emotion", "value"),
    "emonet-binary": ("path", "annotator", "value", "emotion"),
    "emonet-hq": ("image", "annotator", "human", "annotations"),
}


class RatingFileError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} invalid row(s); nothing was imported:\n{shown}{more}")


@dataclass
class RatingRecord:
    line: int
    image: str
    rater: str
    emotion: int | None  # taxonomy index in binary mode, None in intensity mode
    values: list[int]


@dataclass
class ModelRecord:
    line: int
    image: str
    model: str
    scores: list[float]


@dataclass
class ParsedRatings:
    ratings: list[RatingRecord] = field(default_factory=list)
    model_scores: list[ModelRecord] = field(default_factory=list)


def _truthy(raw: str) -> bool | None:
    t = raw.strip().lower()
    if t in {"true", "1", "yes", "y", "t"}:
        return True
    if t in {"false", "0", "no", "n", "f"}:
        return False
    return None


def parse_ratings(text: str, *, fmt: str, taxonomy: Taxonomy, binary: bool, scale_max: int) -> ParsedRatings:
    """Parse and validate a whole file. Raises RatingFileError naming every bad line."""
    if fmt not in FORMATS:
        raise RatingFileError([f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})"])
    if fmt == "emonet-binary" and not binary:
        raise RatingFileError(["emonet-binary files hold yes/no votes: import them into a binary project"])
    if fmt == "emonet-hq" and binary:
        raise RatingFileError(["emonet-hq files hold intensity ratings: import them into an intensity project"])
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple((h or "").strip() for h in (reader.fieldnames or ()))
    missing = [c for c in HEADERS[fmt] if c not in header]
    if missing:
        raise RatingFileError([f"line 1: header {','.join(header) or '(empty)'} lacks column(s) {', '.join(missing)} "
                               f"(expected {','.join(HEADERS[fmt])})"])
    errors: list[str] = []
    out = ParsedRatings()
    n = len(taxonomy.emotions)
    # intensity: (image, rater) -> record; binary: (image, rater, emotion) -> record
    seen_cells: dict[tuple[str, str, int], int] = {}
    by_pair: dict[tuple[str, str], RatingRecord] = {}
    seen_models: dict[tuple[str, str], int] = {}

    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else v for k, v in row.items()}
        if fmt == "emonet-hq":
            _hq_row(line, row, taxonomy, scale_max, errors, out, by_pair, seen_models)
            continue
        image = row["image"] if fmt == "long" else row["path"]
        rater = row["rater"] if fmt == "long" else row["annotator"]
        if not image or not rater:
            errors.append(f"line {line}: empty {'image' if not image else 'rater'}")
            continue
        try:
            emotion = taxonomy.index_of(row["emotion"])
        except KeyError:
            errors.append(f"line {line}: unknown emotion {row['emotion']!r}")
            continue
        raw_value = row["value"]
        try:
            if fmt == "emonet-binary":
                flag = _truthy(raw_value)
                if flag is None:
                    raise ValueError(f"value {raw_value!r} is not True/False")
                value = int(flag)
            else:
                value = parse_value(raw_value, 1 if binary else scale_max)
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        cell = (image, rater, emotion)
        if cell in seen_cells:
            errors.append(f"line {line}: duplicate rater+image+emotion ({rater}, {image}, {taxonomy.emotions[emotion].name}); "
                          f"first on line {seen_cells[cell]}")
            continue
        seen_cells[cell] = line
        if binary:
            out.ratings.append(RatingRecord(line, image, rater, emotion, [value]))
        else:
            rec = by_pair.get((image, rater))
            if rec is None:
                rec = by_pair[(image, rater)] = RatingRecord(line, image, rater, None, [0] * n)
                out.ratings.append(rec)
            rec.values[emotion] = value
    if errors:
        raise RatingFileError(errors)
    return out


def _hq_row(line: int, row: dict[str, str], taxonomy: Taxonomy, scale_max: int, errors: list[str],
            out: ParsedRatings, by_pair: dict[tuple[str, str], RatingRecord],
            seen_models: dict[tuple[str, str], int]) -> None:
    image, annotator = row["image"], row["annotator"]
    if not image or not annotator:
        errors.append(f"line {line}: empty {'image' if not image else 'annotator'}")
        return
    human = _truthy(row["human"])
    if human is None:
        errors.append(f"line {line}: human {row['human']!r} is not True/False")
        return
    try:
        annotations = ast.literal_eval(row["annotations"] or "{}")
    except (ValueError, SyntaxError):
        errors.append(f"line {line}: annotations is not a dict literal")
        return
    if not isinstance(annotations, dict):
        errors.append(f"line {line}: annotations is not a dict")
        return
    n = len(taxonomy.emotions)
    values: list[float] = [0.0] * n
    seen: set[int] = set()
    bad = False
    for key, raw in annotations.items():
        name = str(key).split("|", 1)[-1]
        try:
            idx = taxonomy.index_of(name)
        except KeyError:
            errors.append(f"line {line}: unknown emotion {key!r}")
            bad = True
            continue
        if idx in seen:
            errors.append(f"line {line}: emotion {taxonomy.emotions[idx].name!r} appears twice")
            bad = True
            continue
        seen.add(idx)
        if human:
            try:
                values[idx] = parse_value(str(raw), scale_max)
            except ValueError as exc:
                errors.append(f"line {line}: {taxonomy.emotions[idx].name}: {exc}")
                bad = True
        else:
            try:
                values[idx] = float(raw)
            except (TypeError, ValueError):
                errors.append(f"line {line}: {taxonomy.emotions[idx].name}: score {raw!r} is not a number")
                bad = True
    if bad:
        return
    if human:
        if (image, annotator) in by_pair:
            errors.append(f"line {line}: duplicate rater+image ({annotator}, {image}); first on line "
                          f"{by_pair[(image, annotator)].line}")
            return
        rec = RatingRecord(line, image, annotator, None, [int(v) for v in values])
        by_pair[(image, annotator)] = rec
        out.ratings.append(rec)
    else:
        if (image, annotator) in seen_models:
            errors.append(f"line {line}: duplicate model prediction ({annotator}, {image}); first on line "
                          f"{seen_models[(image, annotator)]}")
            return
        seen_models[(image, annotator)] = line
        out.model_scores.append(ModelRecord(line, image, annotator, values))
