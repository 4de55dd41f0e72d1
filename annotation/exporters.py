"""Release files: per-split Parquet / CSV / JSONL, raw ratings, dataset card, manifest. PURE.

Only numpy, pyarrow and the stdlib; everything comes in as in-memory data (the release builder
loads it from the database and freezes the config). ``write_release`` lays a release out as::

    README.md                          dataset card (Hugging Face YAML header + documentation)
    release.json                       metadata, frozen config, counts, left-out counts,
                                       agreement summary, balance tables
    data/<split>-00000-of-00001.parquet  one row per image (train, validation, test)
    csv/<split>.csv, jsonl/<split>.jsonl the same rows as CSV and JSON Lines
    raw/ratings.parquet                every rating of the released images, pseudonymous raters
    manifest.json                      sha256 and size of every other file

``datasets.load_dataset("parquet", data_dir=DIR)`` reads data/ only (its split patterns match
the file names; csv/ and jsonl/ are not Parquet, raw/ratings.parquet names no split), and
``datasets.load_dataset(DIR)`` reads the card's ``configs`` (default = the splits, "raw_ratings"
= the raw table). Splits without images get no files.

Columns of the per-image tables (``image_columns``)
    file_name, sha256, ethnicity, gender, age (null = unknown), prompt, split, then
    intensity mode: n_ratings (every rating covers all emotions, so it is also the number of
      ratings per emotion), disputed (image-level), and per emotion, named by the taxonomy slug
      (``annotation.taxonomy.emotion_slug``, e.g. ``jealousy_&_envy``):
      ``<slug>__consensus`` (float, rounded to FLOAT_DECIMALS), ``<slug>__spread`` (max - min),
      ``<slug>__disputed``;
    binary mode: per emotion ``<slug>__label`` (1 / 0 / null = not asked or undecided),
      ``<slug>__yes`` and ``<slug>__no`` (the raw votes).
Raw ratings: sha256, file_name, split, rater (``rater_`` + the first 10 hex digits of
HMAC-SHA256(pseudonym_key, rater id)), then one int column per emotion slug (intensity) or
emotion + vote (binary). Ratings of images left out of the release are not included.

Determinism: rows sorted by sha256 (raw: sha256, rater[, emotion]); floats rounded to
FLOAT_DECIMALS and written with Python's shortest repr in CSV and JSON; JSON files use
sort_keys (JSONL rows keep the column order above); Parquet is written with explicit
compression (zstd, level 3), row group size, format version and no pandas or time metadata,
so writing the same inputs twice gives byte-identical files. Parquet's footer names the writer
("parquet-cpp-arrow version 26.0.1"): the same environment (pinned pyarrow) reproduces the
bytes; another pyarrow version may not. No file holds a timestamp the caller did not pass in.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from annotation.consolidation import BinaryConsolidated, BinaryVotes, Consolidated
from annotation.pgcopy import RatingRows
from annotation.taxonomy import EMOTIONS, TAXONOMY_VERSION, emotion_slug

__all__ = [
    "FLOAT_DECIMALS",
    "CardInfo",
    "ImageRow",
    "Manifest",
    "ManifestEntry",
    "diff_releases",
    "image_columns",
    "image_table",
    "pseudonym",
    "raw_ratings_table",
    "render_card",
    "verify_manifest",
    "write_release",
]

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


# --- helpers -----------------------------------------------------------------------------------

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


def pseudonym(rater_id: int, key: bytes) -> str:
    """Stable pseudonym of a rater: ``rater_`` + 10 hex digits of HMAC-SHA256(key, str(rater_id)).

    The key is a secret of the release series (never published): with it the same rater keeps one
    pseudonym across releases; without it the ids cannot be recovered by trying small integers.
    """
    return "rater_" + hmac.new(key, str(int(rater_id)).encode(), hashlib.sha256).hexdigest()[:10]


def _slugs(emotions: Sequence[str]) -> list[str]:
    slugs = [emotion_slug(e) for e in emotions]
    if len(set(slugs)) != len(slugs):
        raise ValueError("two emotions share a column slug")
    return slugs


def image_columns(emotions: Sequence[str] = EMOTIONS, *, binary: bool = False) -> list[str]:
    """Column names of the per-image tables, in order (see the module docstring)."""
    cols = list(BASE_COLUMNS)
    if binary:
        for s in _slugs(emotions):
            cols += [f"{s}__label", f"{s}__yes", f"{s}__no"]
    else:
        cols += ["n_ratings", "disputed"]
        for s in _slugs(emotions):
            cols += [f"{s}__consensus", f"{s}__spread", f"{s}__disputed"]
    return cols


def _split_names(assignment: Mapping[str, str]) -> list[str]:
    present = set(assignment.values())
    return [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))


def _images_by_id(images: Iterable[ImageRow]) -> dict[int, ImageRow]:
    out: dict[int, ImageRow] = {}
    seen: set[str] = set()
    for im in images:
        if im.image_id in out:
            raise ValueError(f"image id {im.image_id} appears twice")
        if im.sha256 in seen:
            raise ValueError(f"sha256 {im.sha256} appears twice")
        if len(im.sha256) != 64:
            raise ValueError(f"image {im.image_id} has no valid sha256 ({im.sha256!r})")
        seen.add(im.sha256)
        out[im.image_id] = im
    return out


# --- tables --------------------------------------------------------------------------------------

def image_table(
    images: Iterable[ImageRow],
    labels: Labels,
    assignment: Mapping[str, str],
    *,
    emotions: Sequence[str] = EMOTIONS,
) -> Any:
    """One pyarrow Table row per labelled image, sorted by sha256, columns as ``image_columns``.

    Every labelled image needs an ImageRow and a split in ``assignment`` (sha256 -> split);
    ValueError names the first one missing.
    """
    by_id = _images_by_id(images)
    n_e = len(emotions)
    arrays_shape = labels.label.shape if isinstance(labels, BinaryConsolidated) else labels.consensus.shape
    if arrays_shape[1] != n_e:
        raise ValueError(f"labels have {arrays_shape[1]} emotions, the taxonomy {n_e}")
    rows: list[tuple[str, int, ImageRow]] = []
    for r, image_id in enumerate(labels.image_ids.tolist()):
        im = by_id.get(int(image_id))
        if im is None:
            raise ValueError(f"labelled image {image_id} has no ImageRow")
        if im.sha256 not in assignment:
            raise ValueError(f"image {im.file_name} ({im.sha256}) has no split")
        rows.append((im.sha256, r, im))
    rows.sort(key=lambda t: t[0])
    idx = np.array([r for _, r, _ in rows], dtype=np.int64)
    ims = [im for _, _, im in rows]
    cols: dict[str, Any] = {
        "file_name": pa.array([im.file_name for im in ims], pa.string()),
        "sha256": pa.array([im.sha256 for im in ims], pa.string()),
        "ethnicity": pa.array([im.ethnicity for im in ims], pa.string()),
        "gender": pa.array([im.gender for im in ims], pa.string()),
        "age": pa.array([im.age for im in ims], pa.int16()),
        "prompt": pa.array([im.prompt for im in ims], pa.string()),
        "split": pa.array([assignment[im.sha256] for im in ims], pa.string()),
    }
    slugs = _slugs(emotions)
    if isinstance(labels, BinaryConsolidated):
        label = labels.label[idx] if idx.size else labels.label[:0]
        yes, no = labels.n_yes[idx], labels.n_no[idx]
        for e, s in enumerate(slugs):
            col = label[:, e]
            cols[f"{s}__label"] = pa.array(col.astype(np.int8), pa.int8(), mask=col < 0)
            cols[f"{s}__yes"] = pa.array(yes[:, e].astype(np.int16), pa.int16())
            cols[f"{s}__no"] = pa.array(no[:, e].astype(np.int16), pa.int16())
    else:
        cons = np.round(labels.consensus[idx], FLOAT_DECIMALS)
        spread, dis_e = labels.spread[idx], labels.disputed_emotions[idx]
        cols["n_ratings"] = pa.array(labels.n_ratings[idx].astype(np.int16), pa.int16())
        cols["disputed"] = pa.array(labels.disputed[idx], pa.bool_())
        for e, s in enumerate(slugs):
            cols[f"{s}__consensus"] = pa.array(cons[:, e], pa.float64())
            cols[f"{s}__spread"] = pa.array(spread[:, e].astype(np.int16), pa.int16())
            cols[f"{s}__disputed"] = pa.array(dis_e[:, e], pa.bool_())
    return pa.table(cols)


def raw_ratings_table(
    raw: Raw,
    images: Iterable[ImageRow],
    assignment: Mapping[str, str],
    *,
    pseudonym_key: bytes,
    emotions: Sequence[str] = EMOTIONS,
) -> Any:
    """The raw ratings of the released images (those in ``assignment``), pseudonymous raters only.

    Intensity (RatingRows): sha256, file_name, split, rater, one int16 column per emotion slug.
    Binary (BinaryVotes): sha256, file_name, split, rater, emotion (taxonomy name), vote (0/1).
    Sorted by sha256, rater (binary: then emotion). Ratings of other images are dropped.
    ValueError if two raters' pseudonyms collide (choose another key).
    """
    if not pseudonym_key:
        raise ValueError("pseudonym_key must not be empty")
    by_id = _images_by_id(images)
    ids = np.asarray(raw.image_ids, dtype=np.int64)
    raters = np.asarray(raw.rater_ids, dtype=np.int64)
    keep = np.array([(int(i) in by_id and by_id[int(i)].sha256 in assignment) for i in ids.tolist()], dtype=bool)
    uniq_raters = sorted(set(raters[keep].tolist()))
    names = {r: pseudonym(r, pseudonym_key) for r in uniq_raters}
    if len(set(names.values())) != len(names):
        raise ValueError("two raters got the same pseudonym; use another pseudonym_key")
    rows = np.flatnonzero(keep)
    sha = [by_id[int(ids[i])].sha256 for i in rows.tolist()]
    rater_names = [names[int(raters[i])] for i in rows.tolist()]
    if isinstance(raw, BinaryVotes):
        emo = np.asarray(raw.emotions, dtype=np.int64)[rows]
        emo_names = [emotions[int(e)] for e in emo.tolist()]
        order = sorted(range(len(rows)), key=lambda t: (sha[t], rater_names[t], int(emo[t])))
    else:
        order = sorted(range(len(rows)), key=lambda t: (sha[t], rater_names[t]))
    o = np.array(order, dtype=np.int64)
    sel = rows[o] if o.size else rows[:0]
    cols: dict[str, Any] = {
        "sha256": pa.array([sha[t] for t in order], pa.string()),
        "file_name": pa.array([by_id[int(ids[i])].file_name for i in sel.tolist()], pa.string()),
        "split": pa.array([assignment[sha[t]] for t in order], pa.string()),
        "rater": pa.array([rater_names[t] for t in order], pa.string()),
    }
    if isinstance(raw, BinaryVotes):
        cols["emotion"] = pa.array([emo_names[t] for t in order], pa.string())
        cols["vote"] = pa.array(np.asarray(raw.votes)[sel].astype(np.int8), pa.int8())
    else:
        vals = np.asarray(raw.values)
        if vals.shape[1] != len(emotions):
            raise ValueError(f"raw ratings have {vals.shape[1]} emotions, the taxonomy {len(emotions)}")
        vals = vals[sel]
        for e, s in enumerate(_slugs(emotions)):
            cols[s] = pa.array(vals[:, e].astype(np.int16), pa.int16())
    return pa.table(cols)


# --- text formats --------------------------------------------------------------------------------

def _text_column(values: list[Any], type_: Any) -> list[str]:
    """One column as CSV text: "" for null, true/false, Python's shortest float repr, str otherwise."""
    if pa.types.is_boolean(type_):
        return ["" if v is None else ("true" if v else "false") for v in values]
    if pa.types.is_floating(type_):
        return ["" if v is None else repr(v) for v in values]
    return ["" if v is None else str(v) for v in values]


def _csv_bytes(table: Any) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.column_names)
    cols = [_text_column(table.column(i).to_pylist(), table.schema.field(i).type) for i in range(table.num_columns)]
    w.writerows(zip(*cols, strict=True))
    return buf.getvalue().encode("utf-8")


def _jsonl_bytes(table: Any) -> bytes:
    lines = [json.dumps(row, ensure_ascii=False, allow_nan=False) for row in table.to_pylist()]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def _parquet_bytes(table: Any) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return bytes(sink.getvalue().to_pybytes())


# --- dataset card ---------------------------------------------------------------------------------

def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def _q(text: str) -> str:
    """A YAML scalar: JSON's double-quoted strings are valid YAML."""
    return json.dumps(text, ensure_ascii=False)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{float(x):.{digits}f}"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


PROHIBITED_USES = (
    "Emotion recognition in the workplace or in education (hiring, performance or attention "
    "monitoring, grading, proctoring).",
    "Surveillance, biometric identification or tracking of people, and inferring emotions of "
    "people who have not consented to it.",
    "Decisions about people: access to employment, credit, insurance, housing, education, "
    "healthcare, public services, migration or law enforcement, or any automated decision with "
    "legal or similarly significant effect.",
    "Presenting model outputs trained on these labels as what a person actually feels: the "
    "labels describe how experts perceive expressions on synthetic faces.",
)


def render_card(
    *,
    card: CardInfo,
    labels: Labels,
    split_counts: Mapping[str, int],
    n_raw: int,
    n_raters: int,
    agreement: Mapping[str, Any],
    balance: Mapping[str, Any],
    emotions: Sequence[str] = EMOTIONS,
    scale_max: int | None = None,
) -> str:
    """The dataset card (README.md) with the YAML header the Hugging Face hub reads.

    ``agreement`` is a plain summary dict (keys optional except "emotions")::

        {"level": "interval", "confidence": 0.95, "n_boot": 1000, "mean_alpha": 0.19,
         "emotions": {"<emotion name>": {"alpha": 0.31, "ci_low": 0.25, "ci_high": 0.37,
                                         "n_units": 2400, "reason": None}, ...}}
    """
    binary = isinstance(labels, BinaryConsolidated)
    splits = [s for s in split_counts if split_counts[s] > 0]
    total = sum(split_counts.values())
    y = ["---", f"license: {card.license}", f"pretty_name: {_q(card.pretty_name)}", "task_categories:",
         "- image-classification", "tags:"]
    y += [f"- {t}" for t in ("emotion", "facial-expression", "emonet-face", "expert-annotation", "benchmark",
                             "synthetic-faces")]
    y += ["size_categories:", f"- {_q(_size_category(total))}", "configs:", "- config_name: default",
          "  default: true", "  data_files:"]
    for s in splits:
        y += [f"  - split: {s}", f"    path: {_q(f'data/{s}-*.parquet')}"]
    if n_raw:
        y += ["- config_name: raw_ratings", "  data_files:", "  - split: ratings",
              f"    path: {_q('raw/ratings.parquet')}"]
    y.append("---")

    out: list[str] = ["\n".join(y), "", f"# {card.pretty_name}", ""]
    if card.description:
        out += [card.description, ""]
    mode = "binary (yes/no per image and emotion)" if binary else f"intensity (0..{scale_max if scale_max else '?'})"
    out += ["## Summary", "", "| | |", "|---|---|", f"| Version | {_md(card.version)} |",
            f"| Released | {_md(card.released)} |", f"| Taxonomy | {TAXONOMY_VERSION} ({len(emotions)} emotions) |",
            f"| Mode | {mode} |"]
    out += [f"| Images ({s}) | {split_counts[s]} |" for s in splits]
    out += [f"| Raw ratings | {n_raw} |", f"| Rater pool (experts with at least one rating) | {n_raters} |"]
    out += [f"| Left out ({reason.replace('_', ' ')}) | {n} |" for reason, n in labels.left_out.items()]
    if card.homepage:
        out.append(f"| Homepage | {_md(card.homepage)} |")
    if card.contact:
        out.append(f"| Contact | {_md(card.contact)} |")
    out.append("")

    out += ["## How to load", "", "```python",
            'import datasets; ds = datasets.load_dataset("parquet", data_dir="PATH/TO/THIS/FOLDER")',
            "```", "", "```python",
            f'import pandas; df = pandas.read_parquet("PATH/TO/THIS/FOLDER/data/{splits[0] if splits else "train"}'
            '-00000-of-00001.parquet")', "```", ""]
    if n_raw:
        out += ['Raw ratings: `pandas.read_parquet("PATH/TO/THIS/FOLDER/raw/ratings.parquet")` or '
                '`datasets.load_dataset("PATH/TO/THIS/FOLDER", "raw_ratings")`.', ""]
    out += ["## Files and columns", "",
            "- `data/<split>-00000-of-00001.parquet`, `csv/<split>.csv`, `jsonl/<split>.jsonl`: one row per image.",
            "- `raw/ratings.parquet`: one row per rating, raters as pseudonyms (`rater_` + 10 hex digits of a "
            "keyed hash; never names or e-mail addresses).",
            "- `release.json`: frozen release configuration, counts, agreement and balance tables.",
            "- `manifest.json`: sha256 and size of every file.", "",
            "Per-image columns: `file_name`, `sha256`, `ethnicity`, `gender`, `age`, `prompt`, `split`, then "]
    if binary:
        out[-1] += ("per emotion `<slug>__label` (1 yes, 0 no, empty = not asked or undecided), `<slug>__yes` and "
                    "`<slug>__no` (raw vote counts).")
    else:
        out[-1] += ("`n_ratings`, `disputed`, and per emotion `<slug>__consensus`, `<slug>__spread` "
                    "(max - min of the ratings) and `<slug>__disputed`. Every rating covers all emotions "
                    "(untouched = 0), so `n_ratings` is also the number of ratings per emotion.")
    out += ["", "Emotion slugs: " + ", ".join(f"`{emotion_slug(e)}`" for e in emotions) + ".", ""]

    out += ["## Consolidation", "", labels.describe() if isinstance(labels, BinaryConsolidated)
            else labels.rule.describe(), ""]

    out += ["## Inter-annotator agreement", ""]
    level = agreement.get("level", "interval")
    conf = agreement.get("confidence", 0.95)
    n_boot = agreement.get("n_boot")
    out.append(f"Krippendorff's alpha ({level}) per emotion with {_fmt(float(conf) * 100, 0)}% bootstrap "
               f"intervals" + (f" ({n_boot} resamples over images)." if n_boot else ".")
               + (f" Mean alpha over emotions: {_fmt(agreement.get('mean_alpha'))}."
                  if agreement.get("mean_alpha") is not None else ""))
    out += ["", "| Emotion | alpha | interval | images |", "|---|---:|---|---:|"]
    per: Mapping[str, Mapping[str, Any]] = agreement.get("emotions", {})
    for e in emotions:
        a = per.get(e, {})
        ci = f"[{_fmt(a.get('ci_low'))}, {_fmt(a.get('ci_high'))}]" if a.get("ci_low") is not None else "n/a"
        n_units = a.get("n_units")
        out.append(f"| {_md(e)} | {_fmt(a.get('alpha'))} | {ci} | {n_units if n_units is not None else 'n/a'} |")
    out.append("")

    out += ["## Demographic balance per split", "",
            "Counts and shares (of the split) per value; splits are stratified by ethnicity x gender x age bucket.",
            ""]
    bsplits = list(balance.get("splits", {}))
    for key, rows in balance.get("keys", {}).items():
        out += [f"### {key}", "", "| value | all | " + " | ".join(bsplits) + " |",
                "|---|---:|" + "---:|" * len(bsplits)]
        for row in rows:
            cells = [f"{row['all']['n']} ({float(row['all']['share']):.1%})"]
            cells += [f"{row['by_split'][s]['n']} ({float(row['by_split'][s]['share']):.1%})" for s in bsplits]
            out.append(f"| {_md(row['value'])} | " + " | ".join(cells) + " |")
        out.append("")

    out += ["## License", "",
            f"The data of this release is licensed {card.license.upper()} "
            "(https://creativecommons.org/licenses/by/4.0/). The emotion taxonomy is the EmoNet-Face "
            "taxonomy (CC BY 4.0) by its authors; please credit them and this release.", "",
            "## Intended uses", "",
            "- Benchmarking and training models of *perceived* facial emotion expression, measured against "
            "the consensus of psychology experts, and studying expert agreement.",
            "- Research on annotation methods, inter-rater reliability and dataset bias.", "",
            "## Prohibited uses", "",
            "The following uses are not permitted:", ""]
    out += [f"- {p}" for p in PROHIBITED_USES]
    out += ["", "## Limitations", "",
            "The faces are AI-generated; demographic labels come from the generation prompts, not from "
            "self-identification. Experts often disagree (low alpha for several emotions): use the spread, "
            "the disputed flags and the raw ratings, not only the consensus.", ""]
    if card.citation:
        out += ["## Citation", "", "```", card.citation, "```", ""]
    return "\n".join(out)


# --- release -----------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_release(
    out_dir: Path,
    *,
    images: Sequence[ImageRow],
    labels: Labels,
    raw: Raw,
    assignment: Mapping[str, str],
    balance: Mapping[str, Any],
    agreement: Mapping[str, Any],
    card: CardInfo,
    config: Mapping[str, Any],
    pseudonym_key: bytes,
    emotions: Sequence[str] = EMOTIONS,
    scale_max: int | None = None,
) -> Manifest:
    """Write a complete release folder (layout in the module docstring) and return its manifest.

    out_dir must not exist: files are written to a temporary sibling folder that is renamed into
    place at the end, so a failure leaves nothing half-written. ``config`` is the frozen release
    configuration (consolidation rule, split config, ...) and goes into release.json unchanged
    except for float rounding; it must not contain secrets (pseudonym_key is never written).
    ``scale_max`` defaults to labels.scale_max (intensity) or 1 (binary).
    Precondition: every labelled image has an ImageRow and a split (ValueError otherwise).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; a release folder is written once")
    binary = isinstance(labels, BinaryConsolidated)
    if scale_max is None:
        scale_max = 1 if isinstance(labels, BinaryConsolidated) else labels.scale_max
    table = image_table(images, labels, assignment, emotions=emotions)
    released = set(table.column("sha256").to_pylist())
    released_assignment = {s: sp for s, sp in assignment.items() if s in released}
    raw_table = raw_ratings_table(raw, images, released_assignment, pseudonym_key=pseudonym_key,
                                  emotions=emotions)
    splits = _split_names(released_assignment)
    files: dict[str, bytes] = {}
    split_counts: dict[str, int] = {}
    split_col = table.column("split")
    for s in splits:
        part = table.filter(pc.equal(split_col, s))
        split_counts[s] = part.num_rows
        files[f"data/{s}-00000-of-00001.parquet"] = _parquet_bytes(part)
        files[f"csv/{s}.csv"] = _csv_bytes(part)
        files[f"jsonl/{s}.jsonl"] = _jsonl_bytes(part)
    if raw_table.num_rows:
        files["raw/ratings.parquet"] = _parquet_bytes(raw_table)
    n_raters = len(set(raw_table.column("rater").to_pylist()))
    files["README.md"] = render_card(
        card=card, labels=labels, split_counts=split_counts, n_raw=raw_table.num_rows, n_raters=n_raters,
        agreement=agreement, balance=balance, emotions=emotions, scale_max=scale_max,
    ).encode("utf-8")
    meta = {
        "format": RELEASE_FORMAT,
        "card": asdict(card),
        "mode": "binary" if binary else "intensity",
        "scale_max": scale_max,
        "taxonomy_version": TAXONOMY_VERSION,
        "emotions": [{"name": e, "slug": emotion_slug(e)} for e in emotions],
        "columns": image_columns(emotions, binary=binary),
        "config": config,
        "consolidation": (labels.rule.as_dict() if isinstance(labels, Consolidated) else {"k": labels.k}),
        "counts": {"images": split_counts, "raw_ratings": raw_table.num_rows, "raters": n_raters},
        "left_out": labels.left_out,
        "agreement": agreement,
        "balance": balance,
        "float_decimals": FLOAT_DECIMALS,
    }
    if isinstance(labels, BinaryConsolidated):
        meta["undecided_items"] = labels.undecided_items
    files["release.json"] = _dumps(meta).encode("utf-8")
    manifest = Manifest(files=tuple(ManifestEntry(path=p, sha256=_sha256(b), size=len(b))
                                    for p, b in sorted(files.items())))
    files["manifest.json"] = manifest.to_json().encode("utf-8")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        os.chmod(tmp, 0o755)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def verify_manifest(release_dir: Path) -> list[str]:
    """Problems found checking a release folder against its manifest.json (empty = intact)."""
    release_dir = Path(release_dir)
    listed = json.loads((release_dir / "manifest.json").read_text(encoding="utf-8"))["files"]
    problems = []
    names = set()
    for entry in listed:
        names.add(entry["path"])
        path = release_dir / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
            continue
        data = path.read_bytes()
        if len(data) != entry["size"] or _sha256(data) != entry["sha256"]:
            problems.append(f"{entry['path']}: size or sha256 differs from the manifest")
    on_disk = {p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file()}
    problems += [f"{p}: not in the manifest" for p in sorted(on_disk - names - {"manifest.json"})]
    return problems


# --- diff --------------------------------------------------------------------------------------

def _rows(table: Any) -> list[dict[str, Any]]:
    if hasattr(table, "to_pylist"):
        return list(table.to_pylist())
    return [dict(r) for r in table]


def _n_ratings(row: Mapping[str, Any]) -> int:
    if "n_ratings" in row:
        return int(row["n_ratings"] or 0)
    return sum(int(v or 0) for k, v in row.items() if k.endswith(("__yes", "__no")))


def diff_releases(old: Any, new: Any, *, tolerance: float = 1e-9) -> dict[str, Any]:
    """Compare two releases' per-image tables (pyarrow Tables or sequences of row dicts).

    Images are matched by sha256. Labels are the ``<slug>__consensus`` (intensity) or
    ``<slug>__label`` (binary) columns present in both; a label changed when the values differ by
    more than ``tolerance`` (or one is null). Ratings added = growth of n_ratings (binary: yes +
    no votes) of images in both releases. Returns::

        {"summary": {"images_old", "images_new", "added", "removed", "labels_changed",
                     "images_with_changed_labels", "split_changed", "ratings_added",
                     "images_with_new_ratings"},
         "added": [sha256...], "removed": [sha256...],
         "labels_changed": [{"sha256", "emotion", "old", "new"}...],
         "split_changed": [{"sha256", "old", "new"}...],
         "ratings_added": [{"sha256", "old", "new"}...],
         "columns_added": [...], "columns_removed": [...]}

    All lists are sorted (by sha256, then emotion slug).
    """
    old_rows = {r["sha256"]: r for r in _rows(old)}
    new_rows = {r["sha256"]: r for r in _rows(new)}
    old_cols = set(next(iter(old_rows.values()), {}).keys())
    new_cols = set(next(iter(new_rows.values()), {}).keys())
    label_cols = sorted(c for c in old_cols & new_cols if c.endswith(("__consensus", "__label")))
    added = sorted(new_rows.keys() - old_rows.keys())
    removed = sorted(old_rows.keys() - new_rows.keys())
    changed: list[dict[str, Any]] = []
    split_changed: list[dict[str, Any]] = []
    more: list[dict[str, Any]] = []
    for sha in sorted(old_rows.keys() & new_rows.keys()):
        a, b = old_rows[sha], new_rows[sha]
        for c in label_cols:
            va, vb = a.get(c), b.get(c)
            same = (va is None and vb is None) or (
                va is not None and vb is not None and abs(float(va) - float(vb)) <= tolerance)
            if not same:
                changed.append({"sha256": sha, "emotion": c.rsplit("__", 1)[0], "old": va, "new": vb})
        if a.get("split") != b.get("split"):
            split_changed.append({"sha256": sha, "old": a.get("split"), "new": b.get("split")})
        na, nb = _n_ratings(a), _n_ratings(b)
        if nb > na:
            more.append({"sha256": sha, "old": na, "new": nb})
    return {
        "summary": {
            "images_old": len(old_rows), "images_new": len(new_rows), "added": len(added), "removed": len(removed),
            "labels_changed": len(changed), "images_with_changed_labels": len({c["sha256"] for c in changed}),
            "split_changed": len(split_changed), "ratings_added": sum(m["new"] - m["old"] for m in more),
            "images_with_new_ratings": len(more),
        },
        "added": added, "removed": removed, "labels_changed": changed, "split_changed": split_changed,
        "ratings_added": more,
        "columns_added": sorted(new_cols - old_cols), "columns_removed": sorted(old_cols - new_cols),
    }
