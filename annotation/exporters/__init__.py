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
      ``<slug>__disputed``, and with the measurement model's soft labels (#18)
      ``<slug>__p_present``, ``<slug>__expected_intensity``, ``<slug>__sd`` (floats);
    binary mode: per emotion ``<slug>__label`` (1 / 0 / null = not asked or undecided),
      ``<slug>__yes`` and ``<slug>__no`` (the raw votes).
Raw ratings: sha256, file_name, split, rater (``rater_`` + the first 10 hex digits of
HMAC-SHA256(pseudonym_key, rater id)), then one int column per emotion slug (intensity) or
emotion + vote (binary). Ratings of images left out of the release are not included.

Determinism: rows sorted by sha256 (raw: sha256, rater[, emotion]); floats rounded to
FLOAT_DECIMALS and written with Python's shortest repr in CSV and JSON; CSV: header row, "\\n"
line ends, "" for null, true/false, fields holding a comma, quote, CR or LF quoted with "" for "
(RFC 4180; Python's csv module writes the same except that it leaves CR unquoted), a text cell
a spreadsheet would run as a formula (= + - @ tab CR first) prefixed with ' (annotation.csvsafe;
Parquet and JSONL keep the raw text); JSONL: one
object per row as ``json.dumps(row, ensure_ascii=False)`` writes it (keys in the column order
above); the JSON files use sort_keys; Parquet is written with explicit
compression (zstd, level 3), row group size, format version and no pandas or time metadata,
so writing the same inputs twice gives byte-identical files. Parquet's footer names the writer
("parquet-cpp-arrow version 26.0.1"): the same environment (pinned pyarrow) reproduces the
bytes; another pyarrow version may not. No file holds a timestamp the caller did not pass in.
Every table is written ROW_GROUP (100,000, the Parquet row group size) rows at a time (#21:
``tables.image_plan`` / ``image_table_slice``, ``raw_plan`` / ``raw_table_slice``): a row group
and the same rows' CSV and JSONL lines per step, the bytes those of one write of all rows.

The package, along its seams (each module imports only the ones listed before it):

- records.py: constants and the records the writers take
- helpers.py: helpers
- tables.py: the per-image and raw-rating tables
- text.py: CSV and JSON Lines, built column-wise
- card.py: the dataset card
- release.py: writing a release folder and its manifest
- diff.py: comparing two releases (``diff_tables``: column by column, from only the compared
  columns, the result of ``diff_releases``)
"""

from __future__ import annotations

from .card import PROHIBITED_USES, _fmt, _md, _q, _size_category, render_card  # noqa: F401
from .diff import _n_ratings, _rows, diff_columns, diff_releases, diff_tables  # noqa: F401
from .helpers import _images_by_id, _slugs, _split_names, image_columns, pseudonym  # noqa: F401
from .records import (  # noqa: F401
    BASE_COLUMNS,
    FLOAT_DECIMALS,
    MANIFEST_FORMAT,
    PARQUET_OPTIONS,
    RELEASE_FORMAT,
    SPLIT_ORDER,
    CardInfo,
    ImageRow,
    Labels,
    Manifest,
    ManifestEntry,
    Raw,
    _dumps,
    _normalize,
)
from .release import _FileSink, _sha256, verify_manifest, write_release  # noqa: F401
from .tables import image_table, raw_ratings_table  # noqa: F401
from .text import (  # noqa: F401
    _CSV_QUOTE,
    _CSV_QUOTE_RE,
    _JSON_ESCAPE,
    TEXT_CHUNK_BYTES,
    TOKEN_VOCAB,
    _codes,
    _csv_bytes,
    _csv_cells,
    _csv_chunks,
    _csv_text,
    _json_cells,
    _json_text,
    _jsonl_bytes,
    _jsonl_chunks,
    _parquet_bytes,
    _Run,
    _segments,
    _text_chunks,
)

__all__ = [
    "FLOAT_DECIMALS",
    "CardInfo",
    "ImageRow",
    "Manifest",
    "ManifestEntry",
    "diff_columns",
    "diff_releases",
    "diff_tables",
    "image_columns",
    "image_table",
    "pseudonym",
    "raw_ratings_table",
    "render_card",
    "verify_manifest",
    "write_release",
]
# Also public, as they were when exporters was one module.
__all__ += [
    "BASE_COLUMNS",
    "Labels",
    "MANIFEST_FORMAT",
    "PARQUET_OPTIONS",
    "PROHIBITED_USES",
    "RELEASE_FORMAT",
    "Raw",
    "SPLIT_ORDER",
    "TEXT_CHUNK_BYTES",
    "TOKEN_VOCAB",
]
