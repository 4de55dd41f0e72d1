"""Release files: writing a release folder and its manifest (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

from annotation.consolidation import BinaryConsolidated, BinaryVotes, Consolidated
from annotation.taxonomy import EMOTIONS, TAXONOMY_VERSION, emotion_slug

from .card import render_card
from .helpers import _split_names, image_columns, whole_array
from .records import (
    FLOAT_DECIMALS,
    PARQUET_OPTIONS,
    RELEASE_FORMAT,
    CardInfo,
    ImageRow,
    Labels,
    Manifest,
    ManifestEntry,
    Raw,
    _dumps,
)
from .tables import (
    ImagePlan,
    RawPlan,
    image_plan,
    image_table_slice,
    raw_file_order,
    raw_plan,
    raw_table_slice,
)
from .text import _csv_chunks, _jsonl_chunks, _parquet_bytes, _segments


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Hashing:
    """A write-only file object for pyarrow's ParquetWriter: bytes go to the file and its hash."""

    def __init__(self, fh: Any, digest: Any) -> None:
        self.fh, self.digest, self.size, self.closed = fh, digest, 0, False

    def write(self, data: Any) -> int:
        self.fh.write(data)
        self.digest.update(data)
        n = len(memoryview(data))
        self.size += n
        return n

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:  # the sink closes the file itself
        self.closed = True


class _FileSink:
    """Writes a release's files under ``root`` on one background thread, in submission order,
    hashing them on the way: the caller formats the next chunk while the last one is written.
    Parquet files are encoded on that thread too (pyarrow releases the GIL), a table at a time
    (a row group each, #21), so a file can be written slice by slice, and several files can be
    open at once (a split's Parquet, CSV and JSONL fed slice by slice). The memory waiting is
    bounded in bytes (#21): text chunks wait only while less than ``max_pending`` bytes of them are
    queued, and ``tables_done`` lets the caller wait for the tables it queued before it builds
    the next one (a row group's table is the biggest thing a build makes: never two of them
    waiting at once)."""

    def __init__(self, root: Path, max_pending: int = 24 << 20) -> None:
        self.root = root
        self.entries: dict[str, ManifestEntry] = {}
        self._queue: queue.Queue[tuple[str, str, Any] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._max_pending = max(int(max_pending), 1)
        self._pending = 0  # bytes of text chunks queued and not yet written
        self._tables = 0  # tables queued and not yet encoded
        self._done = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="release-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        open_files: dict[str, _Hashing] = {}
        writers: dict[str, Any] = {}
        while (item := self._queue.get()) is not None:
            kind, rel, arg = item
            try:
                if self._error is not None:
                    continue  # drain until the sentinel
                if kind == "open":
                    path = self.root / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    open_files[rel] = _Hashing(path.open("wb"), hashlib.sha256())
                elif kind == "data":
                    open_files[rel].write(_parquet_bytes(arg) if isinstance(arg, pa.Table) else arg)
                elif kind == "table":  # one more row group (or several, past ROW_GROUP rows)
                    if rel not in writers:
                        writers[rel] = pq.ParquetWriter(open_files[rel], arg.schema, **_WRITER_OPTIONS)
                    writers[rel].write_table(arg, row_group_size=ROW_GROUP)
                else:
                    if rel in writers:
                        writers.pop(rel).close()
                    out = open_files.pop(rel)
                    out.fh.close()
                    self.entries[rel] = ManifestEntry(path=rel, sha256=out.digest.hexdigest(), size=out.size)
            except BaseException as exc:  # handed to the caller at its next put / finish
                self._error = exc
            finally:
                with self._done:
                    if kind == "table":
                        self._tables -= 1
                    elif kind == "data":
                        self._pending -= _size(arg)
                    self._done.notify_all()
                del item, arg
        for out in open_files.values():
            out.fh.close()

    def _put(self, item: tuple[str, str, Any] | None) -> None:
        if self._error is not None:
            raise self._error
        if item is not None and item[0] in ("data", "table"):
            with self._done:
                if item[0] == "table":
                    self._tables += 1
                else:
                    size = _size(item[2])
                    # wait while the chunks queued already fill the budget (one chunk always goes)
                    self._done.wait_for(lambda: self._pending == 0 or self._pending + size <= self._max_pending
                                        or self._error is not None)
                    self._pending += size
            if self._error is not None:
                raise self._error
        self._queue.put(item)

    def tables_done(self, at_most: int = 0) -> None:
        """Wait until at most ``at_most`` of the tables queued so far wait to be encoded and
        written (#21: the caller builds the next row group's table only then, which bounds the
        tables held at once)."""
        with self._done:
            self._done.wait_for(lambda: self._tables <= at_most or self._error is not None)
        if self._error is not None:
            raise self._error

    def open(self, rel: str) -> None:
        self._put(("open", rel, None))

    def data(self, rel: str, chunk: Any) -> None:
        self._put(("data", rel, chunk))

    def table(self, rel: str, table: Any) -> None:
        """Rows of an open Parquet file, in order (every call but the last: ROW_GROUP rows, so the
        file is the one pyarrow writes for all its rows at once)."""
        self._put(("table", rel, table))

    def close(self, rel: str) -> None:
        self._put(("close", rel, None))

    def file(self, rel: str, chunks: Iterable[Any]) -> None:
        """A file made of the chunks (bytes or pyarrow Buffers), in order."""
        self.open(rel)
        for chunk in chunks:
            self.data(rel, chunk)
        self.close(rel)

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
            with self._done:
                self._done.notify_all()
            self._queue.put(None)
            self._thread.join()


def _size(chunk: Any) -> int:
    """Bytes a queued chunk holds (bytes, a pyarrow Buffer or a Table)."""
    if isinstance(chunk, pa.Table):
        return int(chunk.nbytes)
    return len(memoryview(chunk)) if not isinstance(chunk, pa.Buffer) else int(chunk.size)


ROW_GROUP: int = PARQUET_OPTIONS["row_group_size"]
TEXT_ROWS = 25_000  # rows formatted at a time for the CSV and JSONL files (#21: bounds their scratch)
_WRITER_OPTIONS = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}


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
    allocation: Sequence[str] | None = None,
) -> Manifest:
    """Write a complete release folder (layout in the module docstring) and return its manifest.

    out_dir must not exist: files are written to a temporary sibling folder that is renamed into
    place at the end, so a failure leaves nothing half-written. ``config`` is the frozen release
    configuration (consolidation rule, split config, ...) and goes into release.json unchanged
    except for float rounding; it must not contain secrets (pseudonym_key is never written).
    ``scale_max`` defaults to labels.scale_max (intensity) or 1 (binary). ``allocation``: why each
    raw rating was collected, aligned with ``raw`` (raw/ratings.parquet's allocation_reason).
    Precondition: every labelled image has an ImageRow and a split (ValueError otherwise).
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; a release folder is written once")
    plan = image_plan(images, labels, assignment, emotions=emotions)
    released = set(plan.base["sha256"].to_pylist())
    released_assignment = {s: sp for s, sp in assignment.items() if s in released}
    raw_rows = raw_plan(raw, images, released_assignment, pseudonym_key=pseudonym_key, emotions=emotions,
                        allocation=allocation)
    return _write(out_dir, plan=plan, raw_rows=raw_rows, splits=_split_names(released_assignment), labels=labels,
                  balance=balance, agreement=agreement, card=card, config=config, emotions=emotions,
                  scale_max=scale_max)


def image_plan_columns(info: Any, labels: Labels, split: Any, split_names: Sequence[str], *,
                       emotions: Sequence[str] = EMOTIONS) -> ImagePlan:
    """``image_plan`` from columns (#21: no ImageRow per image): ``info`` a pyarrow Table with one row
    per labels row (id, name, sha256, ethnicity, gender, age, prompt; annotation.selectors_release),
    ``split`` (n,) index into ``split_names`` per labels row. Same plan, same files."""
    n_e = len(emotions)
    arrays_shape = labels.label.shape if isinstance(labels, BinaryConsolidated) else labels.consensus.shape
    if arrays_shape[1] != n_e:
        raise ValueError(f"labels have {arrays_shape[1]} emotions, the taxonomy {n_e}")
    ids = info.column("id").to_numpy()
    if ids.shape != labels.image_ids.shape or not np.array_equal(ids, labels.image_ids):
        raise ValueError("the image columns are not aligned with the labels' images")
    sha = whole_array(info.column("sha256"))
    bad = np.flatnonzero(pc.utf8_length(sha).to_numpy(zero_copy_only=False) != 64)
    if bad.size:
        raise ValueError(f"image {int(ids[bad[0]])} has no valid sha256 ({sha[int(bad[0])].as_py()!r})")
    codes = np.asarray(split, dtype=np.int64)
    if codes.shape != ids.shape or (codes.size and (codes.min() < 0 or codes.max() >= len(split_names))):
        raise ValueError("every labelled image needs a split")
    split_arr = pc.take(pa.array(list(split_names), pa.string()), pa.array(codes, pa.int64()))
    order = pc.sort_indices(sha).to_numpy().astype(np.int64)
    base = {
        "file_name": whole_array(info.column("name")),
        "sha256": sha,
        "ethnicity": whole_array(info.column("ethnicity")),
        "gender": whole_array(info.column("gender")),
        "age": whole_array(info.column("age")).cast(pa.int16()),
        "prompt": whole_array(info.column("prompt")),
        "split": split_arr,
    }
    names = list(split_names)
    return ImagePlan(labels=labels, order=order, base=base, split=[names[c] for c in codes.tolist()],
                     emotions=emotions)


def raw_plan_columns(raw: Raw, plan: ImagePlan, *, pseudonym_key: bytes, emotions: Sequence[str] = EMOTIONS,
                     allocation: Any = None) -> RawPlan:
    """``raw_plan`` for the images of an ``image_plan_columns`` plan (every one released, rows in
    ascending image id): the same rows in the same order."""
    if not pseudonym_key:
        raise ValueError("pseudonym_key must not be empty")
    rel_ids = np.asarray(plan.labels.image_ids, dtype=np.int64)
    rel_sha = plan.base["sha256"]
    sha_rank = np.empty(rel_ids.size, dtype=np.int64)
    sha_rank[plan.order] = np.arange(rel_ids.size)
    ids = np.asarray(raw.image_ids, dtype=np.int64)
    raters = np.asarray(raw.rater_ids, dtype=np.int64)
    pos = np.searchsorted(rel_ids, ids)
    if rel_ids.size:
        keep = (pos < rel_ids.size) & (rel_ids[np.minimum(pos, rel_ids.size - 1)] == ids)
    else:
        keep = np.zeros(ids.shape, dtype=bool)
    rows = np.flatnonzero(keep)
    img = pos[rows]
    del pos, keep
    names, rater, o = raw_file_order(raw, raters, rows, img, sha_rank, pseudonym_key)
    if allocation is not None and len(allocation) != ids.size:
        raise ValueError(f"allocation has {len(allocation)} reasons for {ids.size} raw ratings")
    if not isinstance(raw, BinaryVotes):
        vals = np.asarray(raw.values)  # type: ignore[union-attr,unused-ignore]
        if vals.shape[1] != len(emotions):
            raise ValueError(f"raw ratings have {vals.shape[1]} emotions, the taxonomy {len(emotions)}")
    alloc = None if allocation is None else (allocation if isinstance(allocation, pa.Array)
                                             else pa.array(allocation, pa.string()))
    # int32 where the rows fit (#21: the plan lives through the whole writing; 36 MB less at
    # 3,000,000 ratings than int64)
    index = np.int32 if ids.size < 2**31 else np.int64
    rows, img, rater = rows.astype(index), img.astype(index), rater.astype(index)
    return RawPlan(raw=raw, sel=rows[o], img=img[o], rater=rater[o], rel_sha=rel_sha,
                   rel_file=plan.base["file_name"], rel_split=plan.base["split"], names=names,
                   allocation=alloc, emotions=emotions)


def write_release_columns(
    out_dir: Path,
    *,
    info: Any,
    split: Any,
    split_names: Sequence[str],
    labels: Labels,
    raw: Raw,
    balance: Mapping[str, Any],
    agreement: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    card: CardInfo,
    config: Mapping[str, Any],
    pseudonym_key: bytes,
    emotions: Sequence[str] = EMOTIONS,
    scale_max: int | None = None,
    allocation: Any = None,
    soft: Callable[[Any], tuple[Any, Any, Any]] | None = None,
    between_slices: Callable[[], None] | None = None,
) -> Manifest:
    """``write_release`` from columns (#21: a million images without an ImageRow or a sha256 -> split
    mapping per image): ``info`` and ``split`` as ``image_plan_columns`` takes them, every labelled
    image released. The same files, byte for byte, as write_release with the equivalent ImageRows.
    ``soft``: the soft labels (p_present, expected_intensity, sd; each emotion-major, (E, m) for the m
    image ids given, float64, C-contiguous; they are rounded in place) computed per slice of the tables
    (ratermodel_posterior.SoftRows.of_emotion_major) instead of the labels' arrays.
    ``agreement`` may be a function giving it: called once the tables are written (#21: only the
    card and release.json hold it, so it can be computed elsewhere while the tables are written).
    ``between_slices``: called after each slice of a table is handed to the writer (a build hands
    its allocators' free memory back to the system there, #21)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; a release folder is written once")
    plan = image_plan_columns(info, labels, split, split_names, emotions=emotions)
    raw_rows = raw_plan_columns(raw, plan, pseudonym_key=pseudonym_key, emotions=emotions, allocation=allocation)
    used = set(np.unique(np.asarray(split, dtype=np.int64)).tolist())
    splits = _split_names({n: n for j, n in enumerate(split_names) if j in used})
    return _write(out_dir, plan=plan, raw_rows=raw_rows, splits=splits, labels=labels, balance=balance,
                  agreement=agreement, card=card, config=config, emotions=emotions, scale_max=scale_max, soft=soft,
                  between_slices=between_slices)


def _write(out_dir: Path, *, plan: ImagePlan, raw_rows: RawPlan, splits: list[str], labels: Labels,
           balance: Mapping[str, Any], agreement: Mapping[str, Any] | Callable[[], Mapping[str, Any]], card: CardInfo,
           config: Mapping[str, Any],
           emotions: Sequence[str], scale_max: int | None,
           soft: Callable[[Any], tuple[Any, Any, Any]] | None = None,
           between_slices: Callable[[], None] | None = None) -> Manifest:
    binary = isinstance(labels, BinaryConsolidated)
    if scale_max is None:
        scale_max = 1 if isinstance(labels, BinaryConsolidated) else labels.scale_max
    split_of = np.asarray(plan.split, dtype=object)[plan.order] if plan.order.size else np.zeros(0, dtype=object)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    sink = _FileSink(tmp)
    try:
        # #21: every table is written ROW_GROUP rows at a time (a Parquet row group each; the CSV
        # and JSONL lines of the same rows), never whole: the files are the ones a single write
        # of all rows gives, byte for byte.
        split_counts: dict[str, int] = {}
        if raw_rows.num_rows:
            sink.open("raw/ratings.parquet")
            for lo in range(0, raw_rows.num_rows, ROW_GROUP):
                sink.tables_done(at_most=1)  # one slice encoded while the next is built
                sink.table("raw/ratings.parquet", raw_table_slice(raw_rows, lo, min(lo + ROW_GROUP, raw_rows.num_rows)))
                if between_slices is not None:
                    between_slices()
            sink.close("raw/ratings.parquet")
        for s in splits:
            rows = plan.order[split_of == s]
            split_counts[s] = int(rows.size)
            files = (f"data/{s}-00000-of-00001.parquet", f"csv/{s}.csv", f"jsonl/{s}.jsonl")
            for rel in files:
                sink.open(rel)
            for lo in range(0, max(int(rows.size), 1), ROW_GROUP):
                sink.tables_done()  # the last row group's table encoded: never two held at once
                part = _image_slice(plan, rows[lo:lo + ROW_GROUP], soft)
                sink.table(files[0], part)
                # the text lines TEXT_ROWS rows at a time (their formatting is per row: the same
                # bytes), so the formatted pieces of a whole row group are never held at once
                for sub in range(0, max(part.num_rows, 1), TEXT_ROWS):
                    piece = part.slice(sub, TEXT_ROWS)
                    segments = _segments(piece)
                    csv_chunks = iter(_csv_chunks(piece, segments))
                    if lo or sub:
                        next(csv_chunks)  # the header row: once, at the top
                    for chunk in csv_chunks:
                        sink.data(files[1], chunk)
                    for chunk in _jsonl_chunks(piece, segments):
                        sink.data(files[2], chunk)
                    del piece, segments
                    if between_slices is not None:
                        between_slices()
                del part
            for rel in files:
                sink.close(rel)
        n_raters = raw_rows.n_raters
        n_raw = raw_rows.num_rows
        if callable(agreement):  # computed beside the tables (write_release_columns)
            agreement = agreement()
        sink.file("README.md", [render_card(
            card=card, labels=labels, split_counts=split_counts, n_raw=n_raw, n_raters=n_raters,
            agreement=agreement, balance=balance, emotions=emotions, scale_max=scale_max,
            split_config=config.get("split"), test_split_note=str(config.get("test_split_note") or ""),
        ).encode("utf-8")])
        meta = {
            "format": RELEASE_FORMAT,
            "card": asdict(card),
            "mode": "binary" if binary else "intensity",
            "scale_max": scale_max,
            "taxonomy_version": TAXONOMY_VERSION,
            "emotions": [{"name": e, "slug": emotion_slug(e)} for e in emotions],
            "columns": image_columns(emotions, binary=binary,
                                     soft=isinstance(labels, Consolidated) and labels.p_present is not None),
            "config": config,
            "consolidation": (labels.rule.as_dict() if isinstance(labels, Consolidated) else {"k": labels.k}),
            "counts": {"images": split_counts, "raw_ratings": n_raw, "raters": n_raters},
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


def _image_slice(plan: ImagePlan, rows: Any, soft: Callable[[Any], tuple[Any, Any, Any]] | None) -> Any:
    """image_table_slice of these labels rows; with ``soft``, the soft labels computed for them now,
    and compact labels (consolidate_intensity(compact=True)) in their documented dtypes (same values)."""
    labels = plan.labels
    if isinstance(labels, BinaryConsolidated) or (
            soft is None and labels.consensus.dtype == np.float64 and labels.spread.dtype == np.int16):
        return image_table_slice(plan, rows)
    ids = labels.image_ids[rows]
    # #21: the float columns built emotion-major and rounded in place (one array each, no
    # transposed and rounded copies beside them); the same values as image_table_slice's
    cons = np.ascontiguousarray(labels.consensus[rows].T, dtype=np.float64)
    if getattr(labels, "consensus_halves", False):  # int8 codes, twice the median (#21): exact halves
        cons *= 0.5
    rounded = {"consensus": cons}
    if soft is not None:
        rounded.update(zip(("p_present", "expected_intensity", "sd"), soft(ids), strict=True))
    else:
        for name, a in (("p_present", labels.p_present), ("expected_intensity", labels.expected_intensity),
                        ("sd", labels.soft_sd)):
            if a is not None:
                rounded[name] = np.ascontiguousarray(a[rows].T, dtype=np.float64)
    for arr in rounded.values():
        np.round(arr, FLOAT_DECIMALS, out=arr)
    lazy = {name: np.broadcast_to(np.zeros((1, 1)), (len(rows), len(plan.emotions))) for name in rounded}
    sub = dataclasses.replace(labels, image_ids=ids, consensus=lazy["consensus"],
                              spread=labels.spread[rows].astype(np.int16), n_ratings=labels.n_ratings[rows],
                              disputed_emotions=labels.disputed_emotions[rows], disputed=labels.disputed[rows],
                              p_present=lazy.get("p_present"), expected_intensity=lazy.get("expected_intensity"),
                              soft_sd=lazy.get("sd"))
    take = pa.array(np.asarray(rows, dtype=np.int64), pa.int64())
    sub_plan = ImagePlan(labels=sub, order=np.arange(len(rows), dtype=np.int64),
                         base={name: arr.take(take) for name, arr in plan.base.items()},
                         split=[], emotions=plan.emotions)
    return image_table_slice(sub_plan, np.arange(len(rows), dtype=np.int64), rounded=rounded)


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
