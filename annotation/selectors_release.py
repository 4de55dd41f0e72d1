"""Readers for the release build (#21: a million images without a Python object per image).

``image_info_table``: the released images' columns, read by one COPY of CSV into pyarrow (strings
stay Arrow buffers, never Python str objects), aligned with the labels' image ids.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
from django.db import connection

from annotation.models import Project

IMAGE_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("id", pa.int64()), ("name", pa.string()), ("sha256", pa.string()), ("ethnicity", pa.string()),
    ("gender", pa.string()), ("age", pa.int16()), ("prompt", pa.string()),
)


def image_info_table(project: Project, image_ids: npt.ArrayLike, *, with_file: bool = False) -> Any:
    """A pyarrow Table (id, name, sha256, ethnicity, gender, age, prompt[, file]) with one row per id of
    ``image_ids`` (ascending, as the labels' ids are), in that order; age null where unknown.
    ValueError naming the first id that is not an image of the project."""
    ids = np.asarray(image_ids, dtype=np.int64)
    columns = IMAGE_COLUMNS + ((("file", pa.string()),) if with_file else ())
    names = [c for c, _ in columns]
    sql = (f"COPY (SELECT {', '.join(names)} FROM annotation_image WHERE project_id = {int(project.pk)} "
           "ORDER BY id) TO STDOUT WITH (FORMAT csv)")
    with tempfile.TemporaryFile() as fh:  # on disk, not in memory: a million rows are ~200 MB of CSV
        with connection.cursor() as cur:
            cur.copy_expert(sql, fh)
        fh.seek(0)
        table = pacsv.read_csv(
            fh, read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=dict(columns), strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False))
    all_ids = table.column("id").to_numpy()
    pos = np.searchsorted(all_ids, ids)
    ok = (pos < all_ids.size) & (all_ids[np.minimum(pos, max(all_ids.size - 1, 0))] == ids) if all_ids.size \
        else np.zeros(ids.size, dtype=bool)
    if not ok.all():
        raise ValueError(f"image {int(ids[~ok][0])} is not an image of project {project.slug}")
    if pos.size == all_ids.size and bool(np.all(pos == np.arange(pos.size))):
        return table.combine_chunks()
    return table.take(pa.array(pos, pa.int64())).combine_chunks()


def allocation_reasons_array(project: Project, image_ids: npt.ArrayLike, rater_ids: npt.ArrayLike,
                             emotions: npt.ArrayLike | None = None, *, max_rating_id: int | None = None) -> Any:
    """annotation.selectors.allocation_reasons as a pyarrow array of strings, dictionary-encoded (#21:
    a code byte per rating, not a string: 3 MB at 3,000,000 ratings instead of about 40; the same
    reasons, aligned with the rows given), read by one COPY and matched with numpy: no Python tuple
    per rating."""
    from annotation.selectors import IMPORTED, UNRECORDED

    img = np.asarray(image_ids, dtype=np.int64)
    rat = np.asarray(rater_ids, dtype=np.int64)
    emo = None if emotions is None else np.asarray(emotions, dtype=np.int64)
    where = [f"r.project_id = {int(project.pk)}", "r.emotion IS NULL" if emo is None else "r.emotion IS NOT NULL"]
    if max_rating_id is not None:
        where.append(f"r.id <= {int(max_rating_id)}")
    sql = ("COPY (SELECT r.image_id, r.rater_id, coalesce(r.emotion, 0), "
           f"CASE WHEN a.id IS NULL THEN '{IMPORTED}' WHEN a.allocation_reason = '' THEN '{UNRECORDED}' "
           "ELSE a.allocation_reason END FROM annotation_rating r "
           "LEFT JOIN annotation_assignment a ON a.rating_id = r.id "
           f"WHERE {' AND '.join(where)}) TO STDOUT WITH (FORMAT csv)")
    with tempfile.TemporaryFile() as fh:
        with connection.cursor() as cur:
            cur.copy_expert(sql, fh)
        fh.seek(0)
        table = pacsv.read_csv(
            fh, read_options=pacsv.ReadOptions(column_names=["i", "r", "e", "why"], block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={"i": pa.int64(), "r": pa.int64(), "e": pa.int64(), "why": pa.dictionary(pa.int32(), pa.string())},
                strings_can_be_null=False, quoted_strings_can_be_null=False))
    why = table.column("why").combine_chunks()
    reasons = why.dictionary.to_pylist() if len(why) else []
    names = sorted(set(reasons) | {IMPORTED})
    remap = np.array([names.index(x) for x in reasons], dtype=np.int64)
    db_code = remap[why.indices.to_numpy()] if len(why) else np.zeros(0, dtype=np.int64)
    i, r, e = (table.column(c).to_numpy() for c in ("i", "r", "e"))
    del table, why
    r_span = int(max(r.max() if r.size else 0, rat.max() if rat.size else 0)) + 1
    e_span = 1 if emo is None else int(max(e.max() if e.size else 0, emo.max() if emo.size else 0)) + 1

    def key(a: Any, b: Any, c: Any) -> Any:
        k = a * r_span + b
        return k if c is None else k * e_span + c

    db_key = key(i, r, None if emo is None else e)
    del i, r, e
    o = np.argsort(db_key, kind="stable")
    db_key, db_code = db_key[o], db_code[o]
    want = key(img, rat, emo)
    pos = np.minimum(np.searchsorted(db_key, want), max(db_key.size - 1, 0))
    found = (db_key[pos] == want) if db_key.size else np.zeros(want.size, dtype=bool)
    code = np.where(found, db_code[pos] if db_key.size else 0, names.index(IMPORTED))
    return pa.DictionaryArray.from_arrays(pa.array(code.astype(np.int8 if len(names) < 128 else np.int32)),
                                          pa.array(names, pa.string()))


def release_splits_arrays(release_ids: list[int]) -> tuple[Any, Any]:
    """(sha256s, splits) of the images of these releases (given oldest first; a later release's
    split of an image wins), each sha256 once, as arrays read by one COPY (#21: a million earlier
    images without a dict entry each)."""
    if not release_ids:
        return np.zeros(0, dtype="S64"), np.zeros(0, dtype=str)
    rank = " ".join(f"WHEN {int(r)} THEN {i}" for i, r in enumerate(release_ids))
    sql = (f"COPY (SELECT sha256, split, CASE release_id {rank} END FROM annotation_releaseimage "
           f"WHERE release_id IN ({', '.join(str(int(r)) for r in release_ids)})) TO STDOUT WITH (FORMAT csv)")
    with tempfile.TemporaryFile() as fh:
        with connection.cursor() as cur:
            cur.copy_expert(sql, fh)
        fh.seek(0)
        table = pacsv.read_csv(
            fh, read_options=pacsv.ReadOptions(column_names=["sha256", "split", "rank"], block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={"sha256": pa.binary(), "split": pa.dictionary(pa.int32(), pa.string()),
                              "rank": pa.int32()}, strings_can_be_null=False, quoted_strings_can_be_null=False))
    if table.num_rows == 0:
        return np.zeros(0, dtype="S64"), np.zeros(0, dtype=str)
    sha = table.column("sha256").combine_chunks().to_numpy(zero_copy_only=False).astype("S")
    split = table.column("split").combine_chunks()
    names = np.array(split.dictionary.to_pylist(), dtype=str)
    code = split.indices.to_numpy()
    rank = table.column("rank").to_numpy()
    order = np.lexsort((rank, sha))  # by sha256, then release: the last of each sha256 wins
    sha, code = sha[order], code[order]
    last = np.r_[sha[1:] != sha[:-1], True]
    return sha[last], names[code[last]]
