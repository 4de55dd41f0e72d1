"""Release files: the per-image and raw-rating tables (part of annotation.exporters; contracts in its docstring). PURE."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

from annotation.consolidation import BinaryConsolidated, BinaryVotes
from annotation.taxonomy import EMOTIONS

from .helpers import _images_by_id, _slugs, pseudonym
from .records import FLOAT_DECIMALS, ImageRow, Labels, Raw


@dataclass
class ImagePlan:
    """The per-image table's rows in file order (ascending sha256) and its base columns (rows in
    ``labels`` order), for writing it slice by slice (:func:`image_table_slice`)."""

    labels: Labels
    order: Any  # (n,) int64: labels row of each output row, ascending sha256
    base: dict[str, Any]  # column -> pyarrow array in labels row order
    split: list[str]  # split of each labels row
    emotions: Sequence[str]


def image_plan(images: Iterable[ImageRow], labels: Labels, assignment: Mapping[str, str], *,
               emotions: Sequence[str] = EMOTIONS) -> ImagePlan:
    """Check and order the per-image table (see :func:`image_table`) without building it."""
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
    order = pc.sort_indices(sha).to_numpy().astype(np.int64)
    base = {
        "file_name": pa.array([im.file_name for im in ims], pa.string()),
        "sha256": sha,
        "ethnicity": pa.array([im.ethnicity for im in ims], pa.string()),
        "gender": pa.array([im.gender for im in ims], pa.string()),
        "age": pa.array([im.age for im in ims], pa.int16()),
        "prompt": pa.array([im.prompt for im in ims], pa.string()),
        "split": pa.array(splits, pa.string()),
    }
    return ImagePlan(labels=labels, order=order, base=base, split=[str(x) for x in splits], emotions=emotions)


def image_table_slice(plan: ImagePlan, rows: Any, rounded: dict[str, Any] | None = None) -> Any:
    """The per-image table's rows for ``rows`` (labels rows, in the order given). ``rounded``
    (intensity, #21): the float columns' values for these rows already emotion-major (E, len(rows))
    and rounded to FLOAT_DECIMALS ("consensus", and "p_present", "expected_intensity", "sd" when the
    labels have soft labels), used as they are instead of transposed and rounded copies."""
    labels, idx = plan.labels, np.asarray(rows, dtype=np.int64)
    n_base = len(next(iter(plan.base.values()))) if plan.base else -1
    if idx.size == n_base and (n_base == 0 or bool(np.array_equal(idx, np.arange(n_base)))):
        cols: dict[str, Any] = dict(plan.base)  # every row in order (a slice's own plan): no copies
    else:
        take = pa.array(idx, pa.int64())
        cols = {name: pc.take(arr, take) for name, arr in plan.base.items()}
    slugs = _slugs(plan.emotions)
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
        if rounded is not None:
            cons = rounded["consensus"]
        else:
            cons = np.ascontiguousarray(labels.consensus.T[:, idx])
            if getattr(labels, "consensus_halves", False):  # int8 codes, twice the median (#21)
                cons = cons * 0.5
            cons = np.round(cons, FLOAT_DECIMALS)
        spread = np.ascontiguousarray(labels.spread.T[:, idx]).astype(np.int16)
        dis_e = np.ascontiguousarray(labels.disputed_emotions.T[:, idx])
        cols["n_ratings"] = pa.array(labels.n_ratings[idx].astype(np.int16), pa.int16())
        cols["disputed"] = pa.array(labels.disputed[idx], pa.bool_())
        soft = [None if a is None else rounded[name] if rounded is not None else
                np.round(np.ascontiguousarray(a.T[:, idx]), FLOAT_DECIMALS)
                for name, a in (("p_present", labels.p_present), ("expected_intensity", labels.expected_intensity),
                                ("sd", labels.soft_sd))]
        for e, s in enumerate(slugs):
            cols[f"{s}__consensus"] = pa.array(cons[e], pa.float64())
            cols[f"{s}__spread"] = pa.array(spread[e], pa.int16())
            cols[f"{s}__disputed"] = pa.array(dis_e[e], pa.bool_())
            for name, arr in zip(("p_present", "expected_intensity", "sd"), soft, strict=True):
                if arr is not None:  # the measurement model's soft labels (#18)
                    cols[f"{s}__{name}"] = pa.array(arr[e], pa.float64())
    return pa.table(cols)


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
    plan = image_plan(images, labels, assignment, emotions=emotions)
    return image_table_slice(plan, plan.order)


@dataclass
class RawPlan:
    """raw/ratings.parquet's rows in file order, for writing it slice by slice (:func:`raw_table_slice`)."""

    raw: Raw
    sel: Any  # (m,) int64: raw row of each output row
    img: Any  # (m,) released-image index of each output row
    rater: Any  # (m,) index into names
    rel_sha: Any
    rel_file: Any
    rel_split: Any
    names: Any
    allocation: Any  # pyarrow string array (or dictionary-encoded strings) over the raw rows, or None
    emotions: Sequence[str]

    @property
    def num_rows(self) -> int:
        return int(self.sel.size)

    @property
    def n_raters(self) -> int:
        return int(np.unique(self.rater).size)


def raw_plan(
    raw: Raw,
    images: Iterable[ImageRow],
    assignment: Mapping[str, str],
    *,
    pseudonym_key: bytes,
    emotions: Sequence[str] = EMOTIONS,
    allocation: Sequence[str] | None = None,
) -> RawPlan:
    """Check and order the raw ratings table (see :func:`raw_ratings_table`) without building it."""
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
    names, rater, o = raw_file_order(raw, raters, rows, img, sha_rank, pseudonym_key)
    if allocation is not None and len(allocation) != ids.size:
        raise ValueError(f"allocation has {len(allocation)} reasons for {ids.size} raw ratings")
    if not isinstance(raw, BinaryVotes):
        vals = np.asarray(raw.values)
        if vals.shape[1] != len(emotions):
            raise ValueError(f"raw ratings have {vals.shape[1]} emotions, the taxonomy {len(emotions)}")
    return RawPlan(raw=raw, sel=rows[o], img=img[o], rater=rater[o], rel_sha=rel_sha,
                   rel_file=pa.array([im.file_name for im in released], pa.string()),
                   rel_split=pa.array([assignment[im.sha256] for im in released], pa.string()), names=names,
                   allocation=None if allocation is None else pa.array(allocation, pa.string()), emotions=emotions)


def raw_file_order(raw: Raw, raters: Any, rows: Any, img: Any, sha_rank: Any, pseudonym_key: bytes) -> tuple[Any, Any, Any]:
    """The raw table's file order: by image sha256, then rater pseudonym (then emotion, binary),
    as sorted() on those tuples would give. ``rows`` are the kept raw rows, ``img`` their image's
    index and ``sha_rank`` the images' sha256 ranks. Returns (the pseudonyms as an Arrow array,
    each row's index into it, the rows' order)."""
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
    return names, rater, o


def raw_table_slice(plan: RawPlan, lo: int, hi: int) -> Any:
    """Rows lo..hi-1 (file order) of raw/ratings.parquet."""
    sel, img, rater = plan.sel[lo:hi], plan.img[lo:hi], plan.rater[lo:hi]
    img_a, rater_a = pa.array(img, pa.int64()), pa.array(rater, pa.int64())
    cols: dict[str, Any] = {
        "sha256": pc.take(plan.rel_sha, img_a),
        "file_name": pc.take(plan.rel_file, img_a),
        "split": pc.take(plan.rel_split, img_a),
        "rater": pc.take(plan.names, rater_a),
    }
    if plan.allocation is not None:
        alloc = plan.allocation
        if pa.types.is_dictionary(alloc.type):  # codes into the reasons (#21): written as the strings
            cols["allocation_reason"] = pc.take(alloc.dictionary, pc.take(alloc.indices, pa.array(sel, pa.int64())))
        else:
            cols["allocation_reason"] = pc.take(alloc, pa.array(sel, pa.int64()))
    raw = plan.raw
    if isinstance(raw, BinaryVotes):
        emo = np.asarray(raw.emotions, dtype=np.int64)[sel]
        cols["emotion"] = pc.take(pa.array(list(plan.emotions), pa.string()), emo)
        cols["vote"] = pa.array(np.asarray(raw.votes)[sel].astype(np.int8), pa.int8())
    else:
        vals_t = np.ascontiguousarray(np.asarray(raw.values)[sel].T).astype(np.int16)
        for e, s in enumerate(_slugs(plan.emotions)):
            cols[s] = pa.array(vals_t[e], pa.int16())
    return pa.table(cols)


def raw_ratings_table(
    raw: Raw,
    images: Iterable[ImageRow],
    assignment: Mapping[str, str],
    *,
    pseudonym_key: bytes,
    emotions: Sequence[str] = EMOTIONS,
    allocation: Sequence[str] | None = None,
) -> Any:
    """The raw ratings of the released images (those in ``assignment``), pseudonymous raters only.

    Intensity (RatingRows): sha256, file_name, split, rater, one int16 column per emotion slug.
    Binary (BinaryVotes): sha256, file_name, split, rater, emotion (taxonomy name), vote (0/1).
    With ``allocation`` (one reason per raw row, #17): an ``allocation_reason`` column after rater,
    why the queue collected the rating (coverage, disagreement, model_gap, quota, sent_back, retest,
    imported, unrecorded).
    Sorted by sha256, rater (binary: then emotion). Ratings of other images are dropped.
    ValueError if two raters' pseudonyms collide (choose another key).
    """
    plan = raw_plan(raw, images, assignment, pseudonym_key=pseudonym_key, emotions=emotions, allocation=allocation)
    return raw_table_slice(plan, 0, plan.num_rows)
