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
FLOAT_DECIMALS and written with Python's shortest repr in CSV and JSON; CSV: header row, "\\n"
line ends, "" for null, true/false, fields holding a comma, quote, CR or LF quoted with "" for "
(RFC 4180; Python's csv module writes the same except that it leaves CR unquoted); JSONL: one
object per row as ``json.dumps(row, ensure_ascii=False)`` writes it (keys in the column order
above); the JSON files use sort_keys; Parquet is written with explicit
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
import queue
import re
import shutil
import tempfile
import threading
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
    ims = list(images)
    out = {im.image_id: im for im in ims}
    if len(out) == len(ims) and len({im.sha256 for im in ims}) == len(ims) and all(len(im.sha256) == 64 for im in ims):
        return out
    out, seen = {}, set()  # something is wrong: name the first problem
    for im in ims:
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
    found = [by_id.get(image_id) for image_id in labels.image_ids.tolist()]
    ims = [im for im in found if im is not None]
    if len(ims) != len(found):
        raise ValueError(f"labelled image {labels.image_ids[found.index(None)]} has no ImageRow")
    shas = [im.sha256 for im in ims]
    splits = [assignment.get(h) for h in shas]
    if None in splits:
        im = ims[splits.index(None)]
        raise ValueError(f"image {im.file_name} ({im.sha256}) has no split")
    sha = pa.array(shas, pa.string())
    # sha256 values are unique, so this is the order of Python's sorted() (UTF-8 byte order = code point order)
    order = pc.sort_indices(sha)
    idx = order.to_numpy().astype(np.int64)

    def base(values: list[Any], type_: Any) -> Any:
        return pc.take(pa.array(values, type_), order)

    cols: dict[str, Any] = {
        "file_name": base([im.file_name for im in ims], pa.string()),
        "sha256": pc.take(sha, order),
        "ethnicity": base([im.ethnicity for im in ims], pa.string()),
        "gender": base([im.gender for im in ims], pa.string()),
        "age": base([im.age for im in ims], pa.int16()),
        "prompt": base([im.prompt for im in ims], pa.string()),
        "split": base(splits, pa.string()),
    }
    slugs = _slugs(emotions)
    if isinstance(labels, BinaryConsolidated):
        # emotion-major copies, so every column below is one contiguous slice
        label = np.ascontiguousarray(labels.label.T[:, idx])
        yes = np.ascontiguousarray(labels.n_yes.T[:, idx]).astype(np.int16)
        no = np.ascontiguousarray(labels.n_no.T[:, idx]).astype(np.int16)
        for e, s in enumerate(slugs):
            col = label[e]
            cols[f"{s}__label"] = pa.array(col.astype(np.int8), pa.int8(), mask=col < 0)
            cols[f"{s}__yes"] = pa.array(yes[e], pa.int16())
            cols[f"{s}__no"] = pa.array(no[e], pa.int16())
    else:
        cons = np.round(np.ascontiguousarray(labels.consensus.T[:, idx]), FLOAT_DECIMALS)
        spread = np.ascontiguousarray(labels.spread.T[:, idx]).astype(np.int16)
        dis_e = np.ascontiguousarray(labels.disputed_emotions.T[:, idx])
        cols["n_ratings"] = pa.array(labels.n_ratings[idx].astype(np.int16), pa.int16())
        cols["disputed"] = pa.array(labels.disputed[idx], pa.bool_())
        for e, s in enumerate(slugs):
            cols[f"{s}__consensus"] = pa.array(cons[e], pa.float64())
            cols[f"{s}__spread"] = pa.array(spread[e], pa.int16())
            cols[f"{s}__disputed"] = pa.array(dis_e[e], pa.bool_())
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
    released = [im for im in by_id.values() if im.sha256 in assignment]
    rel_ids = np.fromiter((im.image_id for im in released), dtype=np.int64, count=len(released))
    by_rel_id = np.argsort(rel_ids, kind="stable")
    rel_ids = rel_ids[by_rel_id]
    rel_sha = pa.array([im.sha256 for im in released], pa.string())
    sha_rank = np.empty(len(released), dtype=np.int64)
    sha_rank[pc.sort_indices(rel_sha).to_numpy()] = np.arange(len(released))
    ids = np.asarray(raw.image_ids, dtype=np.int64)
    raters = np.asarray(raw.rater_ids, dtype=np.int64)
    pos = np.searchsorted(rel_ids, ids)
    if rel_ids.size:
        keep = (pos < rel_ids.size) & (rel_ids[np.minimum(pos, rel_ids.size - 1)] == ids)
    else:
        keep = np.zeros(ids.shape, dtype=bool)
    rows = np.flatnonzero(keep)
    img = by_rel_id[pos[rows]]  # index into released
    uniq_raters = np.unique(raters[rows])
    name_list = [pseudonym(int(r), pseudonym_key) for r in uniq_raters.tolist()]
    if len(set(name_list)) != len(name_list):
        raise ValueError("two raters got the same pseudonym; use another pseudonym_key")
    names = pa.array(name_list, pa.string())
    name_rank = np.empty(len(name_list), dtype=np.int64)
    name_rank[pc.sort_indices(names).to_numpy()] = np.arange(len(name_list))
    rater = np.searchsorted(uniq_raters, raters[rows])
    # one int64 key (sha256 rank, rater name rank[, emotion]), sorted stably like sorted() on tuples
    key = sha_rank[img] * max(len(name_list), 1) + name_rank[rater]
    if isinstance(raw, BinaryVotes):
        emo = np.asarray(raw.emotions, dtype=np.int64)[rows]
        if emo.size:
            lo, width = int(emo.min()), int(emo.max()) - int(emo.min()) + 1
            if (int(key.max()) + 1) * width < 2**62:
                key = key * width + (emo - lo)
            else:
                rank = np.empty(key.size, dtype=np.int64)
                rank[np.lexsort([emo, key])] = np.arange(key.size)
                key = rank
    o = np.argsort(key, kind="stable")
    sel, img, rater = rows[o], img[o], rater[o]
    cols: dict[str, Any] = {
        "sha256": pc.take(rel_sha, img),
        "file_name": pc.take(pa.array([im.file_name for im in released], pa.string()), img),
        "split": pc.take(pa.array([assignment[im.sha256] for im in released], pa.string()), img),
        "rater": pc.take(names, rater),
    }
    if isinstance(raw, BinaryVotes):
        cols["emotion"] = pc.take(pa.array(list(emotions), pa.string()), emo[o])
        cols["vote"] = pa.array(np.asarray(raw.votes)[sel].astype(np.int8), pa.int8())
    else:
        vals = np.asarray(raw.values)
        if vals.shape[1] != len(emotions):
            raise ValueError(f"raw ratings have {vals.shape[1]} emotions, the taxonomy {len(emotions)}")
        vals_t = np.ascontiguousarray(vals[sel].T).astype(np.int16)
        for e, s in enumerate(_slugs(emotions)):
            cols[s] = pa.array(vals_t[e], pa.int16())
    return pa.table(cols)


# --- text formats --------------------------------------------------------------------------------
#
# CSV and JSONL are built column-wise with numpy and Arrow kernels, never as Python objects per row
# or cell. A column with few distinct values (numbers, booleans, categories) becomes codes into its
# distinct values, each formatted once by Python; runs of such columns are merged into one code
# per row whose text is the whole run (at most TOKEN_VOCAB distinct runs each). Columns with many
# distinct values (sha256, file names) are formatted by Arrow kernels. Rows are joined in chunks of
# at most TEXT_CHUNK_BYTES whose bytes go straight to the file.

TEXT_CHUNK_BYTES = 16 << 20
TOKEN_VOCAB = 1 << 14
_CSV_QUOTE = r'[,"\r\n]'  # fields holding a comma, quote, CR or LF are quoted (RFC 4180)
_JSON_ESCAPE = r'["\\\x00-\x1f]'  # what json.dumps(ensure_ascii=False) escapes in a string
_CSV_QUOTE_RE = re.compile(_CSV_QUOTE)


def _csv_text(v: Any) -> str:
    """One CSV field: "" for null, true/false, Python's shortest float repr, str otherwise; quoted
    (with "" for ") when it holds a comma, quote, CR or LF."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if _CSV_QUOTE_RE.search(s) else s


def _json_text(v: Any) -> str:
    """One JSON value as json.dumps(v, ensure_ascii=False, allow_nan=False) writes it."""
    return json.dumps(v, ensure_ascii=False, allow_nan=False)


@dataclass
class _Run:
    """Adjacent low-cardinality columns: codes[r] = the row's combination, comp[code] = its
    per-column value indices, values[j] = the distinct values of column j."""

    columns: list[int]
    values: list[list[Any]]
    codes: Any  # (n,) int64
    comp: Any  # (size, len(columns)) int64

    def add(self, column: int, values: list[Any], codes: Any) -> bool:
        """Merge the next column in unless the product of distinct counts exceeds TOKEN_VOCAB."""
        size, k = len(self.comp), len(values)
        if size * k > TOKEN_VOCAB:
            return False
        combo = self.codes * k + codes
        seen = np.zeros(size * k, dtype=bool)
        seen[combo] = True
        present = np.flatnonzero(seen)
        remap = np.zeros(size * k, dtype=np.int64)
        remap[present] = np.arange(present.size)
        self.codes = remap[combo]
        self.comp = np.column_stack([self.comp[present // k], present % k])
        self.columns.append(column)
        self.values.append(values)
        return True

    def vocab(self, prefixes: Sequence[str], fmt: Any) -> Any:
        """The text of each combination (prefixes of its columns included), a pyarrow string array."""
        text = np.full(len(self.comp), "", dtype=object)
        for j, (c, vals) in enumerate(zip(self.columns, self.values, strict=True)):
            text = text + np.array([prefixes[c] + fmt(v) for v in vals], dtype=object)[self.comp[:, j]]
        return pa.array(text.tolist(), pa.string())


def _csv_cells(col: Any) -> Any:
    """A many-valued string column as CSV fields (same rules as _csv_text)."""
    need = pc.match_substring_regex(col, _CSV_QUOTE)
    cells = pc.if_else(need, pc.binary_join_element_wise('"', pc.replace_substring(col, '"', '""'), '"', ""), col)
    return pc.fill_null(cells, "") if cells.null_count else cells


def _json_cells(col: Any) -> Any:
    """A many-valued string column as JSON strings (same text as _json_text)."""
    cells = pc.binary_join_element_wise('"', col, '"', "")
    need = pc.fill_null(pc.match_substring_regex(col, _JSON_ESCAPE), False)
    if pc.any(need).as_py():
        escaped = [_json_text(v) for v in col.filter(need).to_pylist()]
        cells = pc.replace_with_mask(cells, need, pa.array(escaped, pa.string()))
    return pc.fill_null(cells, "null") if cells.null_count else cells


def _codes(col: Any) -> tuple[list[Any], Any] | None:
    """(distinct values, code per row) of a column with few distinct values, else None."""
    n = len(col)
    type_ = col.type
    if not col.null_count and pa.types.is_boolean(type_):
        return [False, True], col.to_numpy(zero_copy_only=False).astype(np.int64)
    if not col.null_count and pa.types.is_integer(type_) and n:
        a = col.to_numpy().astype(np.int64)
        lo, hi = int(a.min()), int(a.max())
        if hi - lo <= TOKEN_VOCAB:
            present = np.flatnonzero(np.bincount(a - lo))
            remap = np.zeros(hi - lo + 1, dtype=np.int64)
            remap[present] = np.arange(present.size)
            return (present + lo).tolist(), remap[a - lo]
    if pa.types.is_string(type_):
        head = min(n, 1024)
        if len(pc.unique(col.slice(0, head))) * 4 > head:  # e.g. sha256, file names
            return None
    enc = pc.dictionary_encode(col)  # -0.0 and 0.0 stay distinct; NaNs are one value
    values = enc.dictionary.to_pylist()
    if pa.types.is_string(type_) and len(values) * 4 > n:
        return None
    idx = enc.indices
    if idx.null_count:
        idx = pc.fill_null(idx, len(values))
        values.append(None)
    return values, idx.to_numpy().astype(np.int64)


def _segments(table: Any) -> list[Any]:
    """The table's columns in order as _Runs (few distinct values) and (index, column) of plain
    string columns; shared by the CSV and the JSONL of one table."""
    out: list[Any] = []
    for c in range(table.num_columns):
        col = table.column(c).combine_chunks()
        type_ = col.type
        if not (pa.types.is_string(type_) or pa.types.is_integer(type_) or pa.types.is_floating(type_)
                or pa.types.is_boolean(type_)):
            raise TypeError(f"cannot write a {type_} column as text")
        coded = _codes(col)
        if coded is None:
            out.append((c, col))
            continue
        values, codes = coded
        if not (out and isinstance(out[-1], _Run) and out[-1].add(c, values, codes)):
            out.append(_Run([c], [values], codes, np.arange(len(values), dtype=np.int64)[:, None]))
    return out


def _text_chunks(n: int, segments: list[Any], prefixes: list[str], suffix: str, fmt: Any,
                 strings: Any) -> Iterable[Any]:
    """Rows as prefixes[0] + cell[0] + prefixes[1] + cell[1] ... + suffix, in chunks (Arrow buffers)
    of at most TEXT_CHUNK_BYTES (or one row), each assembled on its own so memory is reused."""
    if n == 0:
        return
    parts: list[tuple[Any, Any]] = []  # (pyarrow vocabulary, codes) | (cells, None) | (scalar, None)
    row_bytes = np.full(n, len(suffix.encode()), dtype=np.int64)
    for seg in segments:
        if isinstance(seg, _Run):
            vocab = seg.vocab(prefixes, fmt)
            row_bytes += pc.binary_length(vocab).to_numpy().astype(np.int64)[seg.codes]
            parts.append((vocab, seg.codes))
        else:
            c, col = seg
            if prefixes[c]:
                parts.append((pa.scalar(prefixes[c], pa.string()), None))
                row_bytes += len(prefixes[c].encode())
            cells = strings(col)
            row_bytes += pc.binary_length(cells).to_numpy()
            parts.append((cells, None))
    parts.append((pa.scalar(suffix, pa.string()), None))
    ends = np.cumsum(row_bytes)
    start = 0
    while start < n:
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + TEXT_CHUNK_BYTES, side="right")))
        args = [pc.take(a, codes[start:stop]) if codes is not None
                else a if isinstance(a, pa.Scalar) else a.slice(start, stop - start) for a, codes in parts]
        joined = pc.binary_join_element_wise(*args, "")
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)
        lo, hi = int(offsets[joined.offset]), int(offsets[joined.offset + len(joined)])
        yield joined.buffers()[2].slice(lo, hi - lo)
        start = stop


def _csv_chunks(table: Any, segments: list[Any] | None = None) -> Iterable[Any]:
    """CSV: a header row, then one line per row ("\\n" line ends), fields as _csv_text."""
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(table.column_names)
    yield head.getvalue().encode("utf-8")
    segs = _segments(table) if segments is None else segments
    yield from _text_chunks(table.num_rows, segs, [""] + [","] * (table.num_columns - 1), "\n", _csv_text,
                            _csv_cells)


def _jsonl_chunks(table: Any, segments: list[Any] | None = None) -> Iterable[Any]:
    """JSON Lines: one object per row, keys in column order, exactly as
    json.dumps(row, ensure_ascii=False, allow_nan=False) writes it (", " and ": " separators)."""
    keys = [json.dumps(name, ensure_ascii=False) for name in table.column_names]
    prefixes = [("{" if i == 0 else ", ") + k + ": " for i, k in enumerate(keys)]
    segs = _segments(table) if segments is None else segments
    yield from _text_chunks(table.num_rows, segs, prefixes, "}\n", _json_text, _json_cells)


def _csv_bytes(table: Any) -> bytes:
    return b"".join(bytes(b) for b in _csv_chunks(table))


def _jsonl_bytes(table: Any) -> bytes:
    return b"".join(bytes(b) for b in _jsonl_chunks(table))


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


class _FileSink:
    """Writes a release's files under ``root`` on one background thread, in submission order,
    hashing them on the way: the caller formats the next chunk while the last one is written.
    Parquet files are encoded on that thread too (pyarrow releases the GIL). At most a few chunks
    wait in the queue, which bounds the memory held."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: dict[str, ManifestEntry] = {}
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="release-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fh: Any = None
        digest: Any = None
        rel, size = "", 0
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain until the sentinel
            kind, arg = item
            try:
                if kind == "open":
                    rel, size, digest = arg, 0, hashlib.sha256()
                    path = self.root / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    fh = path.open("wb")
                elif kind == "data":
                    chunks = [_parquet_bytes(arg)] if isinstance(arg, pa.Table) else [arg]
                    for data in chunks:
                        fh.write(data)
                        digest.update(data)
                        size += len(memoryview(data))
                else:
                    fh.close()
                    fh = None
                    self.entries[rel] = ManifestEntry(path=rel, sha256=digest.hexdigest(), size=size)
            except BaseException as exc:  # handed to the caller at its next put / finish
                self._error = exc
        if fh is not None:
            fh.close()

    def _put(self, item: tuple[str, Any] | None) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def file(self, rel: str, chunks: Iterable[Any]) -> None:
        """A file made of the chunks (bytes or pyarrow Buffers), in order."""
        self._put(("open", rel))
        for chunk in chunks:
            self._put(("data", chunk))
        self._put(("close", None))

    def parquet(self, rel: str, table: Any) -> None:
        self.file(rel, [table])

    def finish(self) -> dict[str, ManifestEntry]:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.entries

    def abort(self) -> None:
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("aborted")
            self._queue.put(None)
            self._thread.join()


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

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    sink = _FileSink(tmp)
    try:
        split_counts: dict[str, int] = {}
        split_col = table.column("split")
        if raw_table.num_rows:
            sink.parquet("raw/ratings.parquet", raw_table)
        for s in splits:
            part = table.filter(pc.equal(split_col, s))
            split_counts[s] = part.num_rows
            sink.parquet(f"data/{s}-00000-of-00001.parquet", part)
            segments = _segments(part)
            sink.file(f"csv/{s}.csv", _csv_chunks(part, segments))
            sink.file(f"jsonl/{s}.jsonl", _jsonl_chunks(part, segments))
        n_raters = pc.count_distinct(raw_table.column("rater")).as_py()
        sink.file("README.md", [render_card(
            card=card, labels=labels, split_counts=split_counts, n_raw=raw_table.num_rows, n_raters=n_raters,
            agreement=agreement, balance=balance, emotions=emotions, scale_max=scale_max,
        ).encode("utf-8")])
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
        sink.file("release.json", [_dumps(meta).encode("utf-8")])
        entries = sink.finish()
        manifest = Manifest(files=tuple(entries[p] for p in sorted(entries)))
        (tmp / "manifest.json").write_bytes(manifest.to_json().encode("utf-8"))
        os.chmod(tmp, 0o755)
        os.rename(tmp, out_dir)
    except BaseException:
        sink.abort()
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
